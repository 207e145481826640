variable "name" {
  description = "Stack name; prefixes every resource and secret id."
  type        = string
  validation {
    # Service account ids ("<name>-trigger") are 6-30 characters.
    condition     = can(regex("^[a-z][a-z0-9-]{2,21}$", var.name))
    error_message = "name must be 3-22 lowercase letters, digits or dashes, starting with a letter."
  }
}

variable "project" {
  description = "Google Cloud project id."
  type        = string
}

variable "region" {
  description = "Region of the functions, bucket and alerting."
  type        = string
}

variable "memory_mb" {
  description = "Memory of each function, in MB."
  type        = number
  default     = 512
}

variable "timeout_s" {
  description = "Timeout of each function, in seconds; also the push subscription's ack deadline."
  type        = number
  default     = 60
  validation {
    condition     = var.timeout_s >= 10 && var.timeout_s <= 600
    error_message = "timeout_s must be 10..600: a push must be answered within its ack deadline."
  }
}

variable "max_attempts" {
  description = "Attempts of a job before the engine moves it to the dead-letter topic."
  type        = number
  default     = 5
  validation {
    condition     = var.max_attempts >= 1 && var.max_attempts <= 50
    error_message = "max_attempts must be 1..50 (below the push subscription's 100 deliveries)."
  }
}

variable "model_secrets" {
  description = "Comma-separated secrets the models may use (AGENTFN_MODEL_SECRETS): the stack creates each, prefixed, and only the worker reads them."
  type        = string
  default     = "OPENAI_API_KEY"
  validation {
    condition     = can(regex("^[A-Za-z0-9_-]+(,[A-Za-z0-9_-]+)*$", var.model_secrets))
    error_message = "model_secrets must be secret names separated by commas, without spaces."
  }
}

variable "artifact" {
  description = "Path to the source zip built by `agentfn package --cloud gcp`."
  type        = string
}

variable "log_retention_days" {
  description = "Days the functions' logs are kept in the stack's log bucket."
  type        = number
  default     = 30
}

variable "vertex_ai" {
  description = "Let both functions call Gemini on Vertex AI with their service accounts (roles/aiplatform.user on the project, the Vertex AI API enabled, its host in AGENTFN_MODEL_HOSTS). Off by default (docs/models.md)."
  type        = bool
  nullable    = false # null (an unset input of the example) takes the default
  default     = false
}

variable "vertex_location" {
  description = "Vertex AI location the models are called in (its host is the one allowed): a region, or global. Null: var.region."
  type        = string
  default     = null
  validation {
    condition     = var.vertex_location == null || can(regex("^(global|[a-z]+-[a-z]+[0-9]+)$", var.vertex_location))
    error_message = "vertex_location must be a Google Cloud region such as us-central1, or global."
  }
}

variable "memory_search" {
  description = "\"file.py:factory\" of the deployed project: the search index (e.g. a vector store client) agents' recall queries use, as AGENTFN_MEMORY_SEARCH; \"\" (default): simple text match (docs/memory.md)."
  type        = string
  nullable    = false # null (an unset input of the example) takes the default
  default     = ""
  validation {
    # A file inside the project folder (no "..", not absolute) and a function name in it.
    condition = var.memory_search == "" || (
      can(regex("^[A-Za-z0-9_][A-Za-z0-9_./-]*\\.py:[A-Za-z_][A-Za-z0-9_]*$", var.memory_search)) &&
      !strcontains(var.memory_search, "..")
    )
    error_message = "memory_search must be \"\" or file.py:factory, a Python file inside the project folder (no \"..\") and a function in it, e.g. search.py:build."
  }
}
