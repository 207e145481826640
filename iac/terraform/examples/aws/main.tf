# Deploy agentfn to AWS: `agentfn deploy --cloud aws`, or by hand:
#   agentfn package --cloud aws --out dist --project my-project
#   terraform init && terraform apply -var artifact=dist/agentfn-aws.zip

variable "name" {
  type    = string
  default = "agentfn"
}

variable "region" {
  type    = string
  default = "us-east-1"
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

variable "worker_concurrency" {
  type    = number
  default = null # the module's default
}

variable "log_retention_days" {
  type    = number
  default = null # the module's default
}

variable "artifact" {
  type = string
}

# e.g. --var 'bedrock_models=["anthropic.claude-3-haiku-20240307-v1:0"]' (docs/deploy/aws.md)
variable "bedrock_models" {
  type    = list(string)
  default = null # the module's default: none
}

# e.g. --var memory_search=search.py:build, a file of the project (docs/memory.md)
variable "memory_search" {
  type    = string
  default = null # the module's default: none (recall matches text)
}

provider "aws" {
  region = var.region
}

module "agentfn" {
  source       = "../../modules/aws"
  name         = var.name
  region       = var.region
  memory_mb    = var.memory_mb
  timeout_s    = var.timeout_s
  max_attempts = var.max_attempts
  artifact     = var.artifact

  worker_concurrency = var.worker_concurrency
  log_retention_days = var.log_retention_days
  bedrock_models     = var.bedrock_models
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
