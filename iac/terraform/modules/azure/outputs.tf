output "api_url" {
  description = "Base URL of the HTTP API."
  value       = "https://${azurerm_linux_function_app.http.default_hostname}"
}

output "bucket" {
  description = "Blob container holding runs, the catalog and deployment records."
  value       = "${azurerm_storage_account.main.name}/${azurerm_storage_container.store.name}"
}

output "queue" {
  description = "Work queue."
  value       = azurerm_storage_queue.work.name
}

output "dead_letter_queue" {
  description = "Poison (dead-letter) queue."
  value       = azurerm_storage_queue.dead_letter.name
}

output "secret" {
  description = "Key Vault secret holding the API key (set its value after deploy)."
  value       = azurerm_key_vault_secret.api_key.versionless_id
}
