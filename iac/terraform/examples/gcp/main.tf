# Deploy agentfn to Google Cloud: `agentfn deploy --cloud gcp`, or by hand:
#   agentfn package --cloud gcp --out dist --project my-project
#   terraform init && terraform apply -var project=my-gcp-project -var artifact=dist/agentfn-gcp.zip

variable "name" {
  type    = string
  default = "agentfn"
}

variable "project" {
  type = string
}

variable "region" {
  type    = string
  default = "us-central1"
}

variable "memory_mb" {
  type    = number
  default = 512
}

variable "timeout_s" {
  type    = number
  default = 60
}

variable "max_attempts" {
  type    = number
  default = 5
}

variable "artifact" {
  type = string
}

variable "model_secrets" {
  type    = string
  default = "OPENAI_API_KEY"
}

variable "log_retention_days" {
  type    = number
  default = 30
}

# e.g. --var vertex_ai=true (docs/deploy/gcp.md)
variable "vertex_ai" {
  type    = bool
  default = null # the module's default: off
}

variable "vertex_location" {
  type    = string
  default = null # the region
}

# e.g. --var memory_search=search.py:build, a file of the project (docs/memory.md)
variable "memory_search" {
  type    = string
  default = null # the module's default: none (recall matches text)
}

terraform {
  required_providers {
    google = {
      source  = "hashicorp/google"
      version = ">= 8.0, < 9.0"
    }
  }
}

provider "google" {
  project = var.project
  region  = var.region
}

module "agentfn" {
  source       = "../../modules/gcp"
  name         = var.name
  project      = var.project
  region       = var.region
  memory_mb    = var.memory_mb
  timeout_s    = var.timeout_s
  max_attempts = var.max_attempts
  artifact     = var.artifact

  model_secrets      = var.model_secrets
  log_retention_days = var.log_retention_days
  vertex_ai          = var.vertex_ai
  vertex_location    = var.vertex_location
  memory_search      = var.memory_search
}

output "api_url" {
  value = module.agentfn.api_url
}

output "bucket" {
  value = module.agentfn.bucket
}

output "queue" {
  value = module.agentfn.queue
}

output "dead_letter_queue" {
  value = module.agentfn.dead_letter_queue
}

output "secret" {
  value = module.agentfn.secret
}
