output "api_url" {
  description = "Base URL of the HTTP API, without a trailing slash (`$API/v1/runs`)."
  value       = trimsuffix(aws_apigatewayv2_stage.default.invoke_url, "/")
}

output "bucket" {
  description = "Bucket holding runs, the catalog and deployment records."
  value       = aws_s3_bucket.store.bucket
}

output "queue" {
  description = "Work queue."
  value       = aws_sqs_queue.work.url
}

output "dead_letter_queue" {
  description = "Dead-letter queue."
  value       = aws_sqs_queue.dead_letter.url
}

output "secret" {
  description = "Secret holding the API key (set its value after deploy)."
  value       = aws_secretsmanager_secret.api_key.name
}
