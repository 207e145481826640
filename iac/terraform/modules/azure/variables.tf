variable "name" {
  description = "Stack name; prefixes every resource."
  type        = string
  validation {
    condition     = can(regex("^[a-z][a-z0-9]{2,17}$", var.name))
    error_message = "name must be 3-18 lowercase letters or digits (storage account and vault names allow no dashes)."
  }
}

variable "location" {
  description = "Azure region of the stack."
  type        = string
}

variable "memory_mb" {
  description = "Memory of each function instance, in MB (Flex Consumption: 2048 or 4096)."
  type        = number
  default     = 2048
}

variable "timeout_s" {
  description = "Timeout of each function, in seconds; steps get 5 s less (AGENTFN_STEP_TIMEOUT_S)."
  type        = number
  default     = 60
  validation {
    condition     = var.timeout_s >= 10 && var.timeout_s <= 600
    error_message = "timeout_s must be 10..600 seconds (the platform's limit; steps get 5 s less)."
  }
}

variable "max_attempts" {
  description = "Deliveries of a job before it moves to the poison queue."
  type        = number
  default     = 5
}

variable "artifact" {
  description = "Path to the Function App zip built by `agentfn package --cloud azure`."
  type        = string
}

variable "log_retention_days" {
  description = "How long function logs are kept."
  type        = number
  default     = 30
}

variable "api_key_version" {
  description = "Bump to write a newly generated API key to the vault (rotation)."
  type        = number
  default     = 1
}

variable "openai_account" {
  description = "An existing Azure OpenAI account both apps may call with their managed identities: its resource id (Cognitive Services OpenAI User is granted on it) and endpoint (its host goes in AGENTFN_MODEL_HOSTS). None by default (docs/models.md)."
  type = object({
    id       = string
    endpoint = string
  })
  default = null
  validation {
    condition = var.openai_account == null ? true : (
      can(regex("(?i)^/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft\\.CognitiveServices/accounts/[^/]+$", var.openai_account.id)) &&
      can(regex("(?i)^https://[a-z0-9-]+(\\.[a-z0-9-]+)+/?$", var.openai_account.endpoint))
    )
    error_message = "openai_account needs the account's resource id (/subscriptions/.../resourceGroups/.../providers/Microsoft.CognitiveServices/accounts/NAME) and its endpoint (https://NAME.openai.azure.com/)."
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
