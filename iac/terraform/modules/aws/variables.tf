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
