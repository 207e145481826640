variable "name" {
  description = "Stack name; prefixes every resource."
  type        = string
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{2,30}$", var.name))
    error_message = "name must be 3-31 lowercase letters, digits or dashes, starting with a letter."
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
  description = "Timeout of each function, in seconds."
  type        = number
  default     = 60
}

variable "max_attempts" {
  description = "Deliveries of a job before it moves to the dead-letter topic."
  type        = number
  default     = 5
}

variable "artifact" {
  description = "Path to the source zip built by `agentfn package --cloud gcp`."
  type        = string
}

variable "log_retention_days" {
  description = "How long function logs are kept."
  type        = number
  default     = 30
}
