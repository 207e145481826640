terraform {
  # 1.11: write-only arguments (the API key never lands in the plan or the state).
  required_version = ">= 1.11"
  required_providers {
    azurerm = {
      source  = "hashicorp/azurerm"
      version = ">= 5.0, < 6.0"
    }
    random = {
      source  = "hashicorp/random"
      version = ">= 3.7, < 4.0" # 3.7: the ephemeral random_password
    }
  }
}
