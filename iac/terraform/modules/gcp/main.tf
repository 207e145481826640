# agentfn on Google Cloud: a Cloud Functions (gen2) HTTP function, a Pub/Sub-triggered worker
# function, a Cloud Storage bucket, a work topic with its dead-letter topic, a Secret Manager
# secret for the API key, least-privilege service accounts, an alert on dead-letter depth,
# and log retention. The same logical stack as modules/aws and modules/azure.

locals {
  environment = {
    AGENTFN_STORAGE      = "gs://${google_storage_bucket.store.name}"
    AGENTFN_QUEUE        = "pubsub://${var.project}/${google_pubsub_topic.work.name}?dead_letter=${google_pubsub_topic.dead_letter.name}&dead_letter_subscription=${google_pubsub_subscription.dead_letter.name}"
    AGENTFN_SECRETS      = "gcp-sm://${var.project}"
    AGENTFN_PROJECT      = "/workspace/project"
    AGENTFN_TOOL_MODULES = "tools.py"
    AGENTFN_MAX_ATTEMPTS = tostring(var.max_attempts)
    AGENTFN_LEASE_S      = tostring(var.timeout_s)
  }
}

# ---------------------------------------------------------------- storage

resource "google_storage_bucket" "store" {
  name                        = "${var.project}-${var.name}-store"
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = true
}

resource "google_storage_bucket" "source" {
  name                        = "${var.project}-${var.name}-source"
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = true
}

resource "google_storage_bucket_object" "artifact" {
  name   = "agentfn-${filesha256(var.artifact)}.zip"
  bucket = google_storage_bucket.source.name
  source = var.artifact
}

# ---------------------------------------------------------------- queues

resource "google_pubsub_topic" "work" {
  name = "${var.name}-work"
}

resource "google_pubsub_topic" "dead_letter" {
  name = "${var.name}-dead-letter"
}

# Keeps dead letters until someone looks at them (a topic alone stores nothing).
resource "google_pubsub_subscription" "dead_letter" {
  name                       = "${var.name}-dead-letter"
  topic                      = google_pubsub_topic.dead_letter.id
  message_retention_duration = "1209600s"
  ack_deadline_seconds       = 60
}

# ---------------------------------------------------------------- secret

resource "google_secret_manager_secret" "api_key" {
  secret_id = "AGENTFN_API_KEY"
  replication {
    auto {}
  }
}

# ---------------------------------------------------------------- identities

resource "google_service_account" "http" {
  account_id   = "${var.name}-http"
  display_name = "agentfn ${var.name} HTTP function"
}

resource "google_service_account" "worker" {
  account_id   = "${var.name}-worker"
  display_name = "agentfn ${var.name} worker function"
}

resource "google_storage_bucket_iam_member" "http_objects" {
  bucket = google_storage_bucket.store.name
  role   = "roles/storage.objectUser"
  member = "serviceAccount:${google_service_account.http.email}"
}

resource "google_storage_bucket_iam_member" "worker_objects" {
  bucket = google_storage_bucket.store.name
  role   = "roles/storage.objectUser"
  member = "serviceAccount:${google_service_account.worker.email}"
}

resource "google_pubsub_topic_iam_member" "http_publish" {
  topic  = google_pubsub_topic.work.id
  role   = "roles/pubsub.publisher"
  member = "serviceAccount:${google_service_account.http.email}"
}

resource "google_pubsub_topic_iam_member" "worker_publish" {
  topic  = google_pubsub_topic.work.id
  role   = "roles/pubsub.publisher"
  member = "serviceAccount:${google_service_account.worker.email}"
}

resource "google_pubsub_topic_iam_member" "worker_dead_letter" {
  topic  = google_pubsub_topic.dead_letter.id
  role   = "roles/pubsub.publisher"
  member = "serviceAccount:${google_service_account.worker.email}"
}

resource "google_secret_manager_secret_iam_member" "http_api_key" {
  secret_id = google_secret_manager_secret.api_key.id
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${google_service_account.http.email}"
}

resource "google_secret_manager_secret_iam_member" "worker_api_key" {
  secret_id = google_secret_manager_secret.api_key.id
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${google_service_account.worker.email}"
}

# ---------------------------------------------------------------- functions

resource "google_cloudfunctions2_function" "http" {
  name     = "${var.name}-http"
  location = var.region
  build_config {
    runtime     = "python311"
    entry_point = "http"
    source {
      storage_source {
        bucket = google_storage_bucket.source.name
        object = google_storage_bucket_object.artifact.name
      }
    }
  }
  service_config {
    available_memory      = "${var.memory_mb}M"
    timeout_seconds       = var.timeout_s
    service_account_email = google_service_account.http.email
    environment_variables = local.environment
    ingress_settings      = "ALLOW_ALL"
  }
}

resource "google_cloudfunctions2_function" "worker" {
  name     = "${var.name}-worker"
  location = var.region
  build_config {
    runtime     = "python311"
    entry_point = "worker"
    source {
      storage_source {
        bucket = google_storage_bucket.source.name
        object = google_storage_bucket_object.artifact.name
      }
    }
  }
  service_config {
    available_memory      = "${var.memory_mb}M"
    timeout_seconds       = var.timeout_s
    service_account_email = google_service_account.worker.email
    environment_variables = local.environment
    ingress_settings      = "ALLOW_INTERNAL_ONLY"
  }
  event_trigger {
    trigger_region        = var.region
    event_type            = "google.cloud.pubsub.topic.v1.messagePublished"
    pubsub_topic          = google_pubsub_topic.work.id
    retry_policy          = "RETRY_POLICY_RETRY"
    service_account_email = google_service_account.worker.email
  }
}

# The API is public; it authenticates every request with the API key itself.
resource "google_cloud_run_service_iam_member" "http_public" {
  location = google_cloudfunctions2_function.http.location
  service  = google_cloudfunctions2_function.http.service_config[0].service
  role     = "roles/run.invoker"
  member   = "allUsers"
}

# ---------------------------------------------------------------- logs

resource "google_logging_project_bucket_config" "default" {
  project        = var.project
  location       = "global"
  bucket_id      = "_Default"
  retention_days = var.log_retention_days
}

# ---------------------------------------------------------------- alert

resource "google_monitoring_alert_policy" "dead_letters" {
  display_name = "${var.name} dead letters"
  combiner     = "OR"
  conditions {
    display_name = "jobs in the dead-letter subscription"
    condition_threshold {
      filter          = "resource.type = \"pubsub_subscription\" AND resource.labels.subscription_id = \"${google_pubsub_subscription.dead_letter.name}\" AND metric.type = \"pubsub.googleapis.com/subscription/num_undelivered_messages\""
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "60s"
      aggregations {
        alignment_period   = "60s"
        per_series_aligner = "ALIGN_MAX"
      }
    }
  }
  documentation {
    content = "Jobs reached the dead-letter topic: inspect them and the failed runs' errors."
  }
}
