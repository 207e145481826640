# Deploy agentfn to Azure: `agentfn deploy --cloud azure`, or by hand:
#   agentfn package --cloud azure --out dist --project my-project
#   terraform init && terraform apply -var artifact=dist/agentfn-azure.zip
# The zip runs as it is (its .python_packages vendored): nothing is built on Azure.

variable "name" {
  type    = string
  default = "agentfn"
}

variable "location" {
  type    = string
  default = "westeurope"
}

variable "memory_mb" {
  type    = number
  default = 2048
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

# e.g. --var 'openai_account={id="/subscriptions/.../accounts/myacct", endpoint="https://myacct.openai.azure.com/"}'
# (docs/deploy/azure.md)
variable "openai_account" {
  type = object({
    id       = string
    endpoint = string
  })
  default = null # the module's default: none
}

# e.g. --var memory_search=search.py:build, a file of the project (docs/memory.md)
variable "memory_search" {
  type    = string
  default = null # the module's default: none (recall matches text)
}

provider "azurerm" {
  features {}
}

module "agentfn" {
  source       = "../../modules/azure"
  name         = var.name
  location     = var.location
  memory_mb    = var.memory_mb
  timeout_s    = var.timeout_s
  max_attempts = var.max_attempts
  artifact     = var.artifact

  openai_account = var.openai_account
  memory_search  = var.memory_search
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
