variable "name" {
  description = "Stack name; prefixes every resource."
  type        = string
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{2,30}$", var.name))
    error_message = "name must be 3-31 lowercase letters, digits or dashes, starting with a letter."
  }
}

variable "region" {
  description = "AWS region of the stack."
  type        = string
}

variable "memory_mb" {
  description = "Memory of each function, in MB."
  type        = number
  default     = 512
}

variable "timeout_s" {
  description = "Timeout of each function, in seconds; steps get 5 s less (AGENTFN_STEP_TIMEOUT_S)."
  type        = number
  default     = 60
  validation {
    condition     = var.timeout_s >= 10 && var.timeout_s <= 900
    error_message = "timeout_s must be 10..900 seconds (the platform's limit; steps get 5 s less)."
  }
}

variable "max_attempts" {
  description = "Deliveries of a job before it moves to the dead-letter queue."
  type        = number
  default     = 5
}

variable "artifact" {
  description = "Path to the Lambda zip built by `agentfn package --cloud aws`."
  type        = string
}

variable "log_retention_days" {
  description = "How long function logs are kept."
  type        = number
  nullable    = false # null (an unset input of the example) takes the default
  default     = 30
}

variable "worker_concurrency" {
  description = "Worker instances the queue trigger runs at most at once (one job each)."
  type        = number
  nullable    = false # null (an unset input of the example) takes the default
  default     = 10
  validation {
    condition     = var.worker_concurrency >= 2 && var.worker_concurrency <= 1000
    error_message = "worker_concurrency must be 2-1000 (the range of SQS maximum concurrency)."
  }
}

variable "bedrock_models" {
  description = "Bedrock foundation model ids (e.g. anthropic.claude-3-haiku-20240307-v1:0) both functions may invoke in var.region with their roles; adds the Bedrock Runtime host to AGENTFN_MODEL_HOSTS. None by default (docs/models.md)."
  type        = list(string)
  nullable    = false # null (an unset input of the example) takes the default
  default     = []
  validation {
    # provider.model[:version]; an inference profile (us., eu., apac., global. ...) is not a
    # foundation model and would need other ARNs.
    condition = alltrue([
      for id in var.bedrock_models :
      can(regex("^[a-z][a-z0-9-]*\\.[a-z0-9][a-z0-9._-]*(:[a-z0-9]+)*$", id)) &&
      !can(regex("^(us|us-gov|eu|apac|jp|au|ca|global)\\.", id))
    ])
    error_message = "bedrock_models must be Bedrock foundation model ids such as anthropic.claude-3-haiku-20240307-v1:0 or amazon.nova-lite-v1:0 (not inference profile ids like us.amazon.nova-lite-v1:0)."
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
