output "api_url" {
  description = "Base URL of the HTTP API."
  value       = google_cloudfunctions2_function.http.service_config[0].uri
}

output "bucket" {
  description = "Bucket holding runs, the catalog and deployment records."
  value       = google_storage_bucket.store.name
}

output "queue" {
  description = "Work topic."
  value       = google_pubsub_topic.work.id
}

output "dead_letter_queue" {
  description = "Dead-letter topic."
  value       = google_pubsub_topic.dead_letter.id
}

output "secret" {
  description = "Secret holding the API key (add a version with its value after deploy)."
  value       = google_secret_manager_secret.api_key.id
}
