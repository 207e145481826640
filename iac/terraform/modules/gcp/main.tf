# agentfn on Google Cloud: a Cloud Functions (gen2) HTTP function, a worker function fed by a
# push subscription on the work topic, a Cloud Storage bucket, a dead-letter topic with a
# subscription that keeps dead letters, Secret Manager secrets named after the stack, one
# service account per identity (http, worker, trigger, build) holding resource-level roles,
# the APIs the stack uses, a log bucket of the stack's own, and an alert on dead-letter depth.
# The same logical stack as modules/aws and modules/azure.

locals {
  # The push subscription's delivery budget and retention, declared once: the subscription
  # gets them and so does the worker (in its queue URL), which hops a waiting job before
  # either runs out. 100 is Pub/Sub's maximum and above any engine's attempts (<= 50), so
  # the engine dead-letters a failing job itself, with its reason, before Pub/Sub would.
  max_deliveries    = 100
  retention_s       = 604800
  work_subscription = "${var.name}-work-push"
  secret_prefix     = "${var.name}-"
  # Functions' logs routed to the stack's log bucket (gen2 functions log as Cloud Run services).
  log_filter   = "resource.type = \"cloud_run_revision\" AND resource.labels.service_name = (\"${google_cloudfunctions2_function.http.name}\" OR \"${google_cloudfunctions2_function.worker.name}\")"
  pubsub_agent = "serviceAccount:service-${data.google_project.this.number}@gcp-sa-pubsub.iam.gserviceaccount.com"
  apis = toset(concat([
    "artifactregistry.googleapis.com",
    "cloudbuild.googleapis.com",
    "cloudfunctions.googleapis.com",
    "cloudresourcemanager.googleapis.com",
    "iam.googleapis.com",
    "logging.googleapis.com",
    "monitoring.googleapis.com",
    "pubsub.googleapis.com",
    "run.googleapis.com",
    "secretmanager.googleapis.com",
    "storage.googleapis.com",
  ], var.vertex_ai ? ["aiplatform.googleapis.com"] : []))
  # Gemini on Vertex AI (var.vertex_ai): where its models are called, the region unless told
  # otherwise, and that location's endpoint ("global" has no regional prefix), as the
  # google-genai client and the code's model policy name it.
  vertex_location = coalesce(var.vertex_location, var.region)
  vertex_host     = local.vertex_location == "global" ? "aiplatform.googleapis.com" : "${local.vertex_location}-aiplatform.googleapis.com"
  # The hosts a blueprint's models may reach (the code's AGENTFN_MODEL_HOSTS allow-list):
  # OpenAI's, and Vertex AI's once it is on.
  model_hosts = join(",", compact([
    "api.openai.com",
    var.vertex_ai ? local.vertex_host : "",
  ]))
  environment = {
    AGENTFN_STORAGE = "gs://${google_storage_bucket.store.name}"
    AGENTFN_QUEUE   = "pubsub://${var.project}/${google_pubsub_topic.work.name}?subscription=${local.work_subscription}&dead_letter=${google_pubsub_topic.dead_letter.name}&dead_letter_subscription=${google_pubsub_subscription.dead_letter.name}&max_deliveries=${local.max_deliveries}&retention=${local.retention_s}"
    AGENTFN_SECRETS = "gcp-sm://${var.project}?prefix=${local.secret_prefix}"
    # The secrets a model may send: exactly the ones the stack creates and the worker reads.
    AGENTFN_MODEL_SECRETS = var.model_secrets
    AGENTFN_MODEL_HOSTS   = local.model_hosts
    # Where a vertex model without `region:` is called (google-genai reads it too)
    GOOGLE_CLOUD_LOCATION  = local.vertex_location
    AGENTFN_PROJECT        = "/workspace/project"
    AGENTFN_TOOL_MODULES   = "tools.py"
    AGENTFN_MEMORY_SEARCH  = var.memory_search # the facts' search index; "" is none (text match)
    AGENTFN_MAX_ATTEMPTS   = tostring(var.max_attempts)
    AGENTFN_LEASE_S        = tostring(var.timeout_s)
    AGENTFN_STEP_TIMEOUT_S = tostring(var.timeout_s - 5) # a step ends before its function
  }
}

data "google_project" "this" {
  project_id = var.project
}

# ---------------------------------------------------------------- APIs

# Every API the stack calls; left enabled on destroy (other stacks in the project use them).
resource "google_project_service" "apis" {
  for_each           = local.apis
  project            = var.project
  service            = each.key
  disable_on_destroy = false
}

# ---------------------------------------------------------------- storage

resource "google_storage_bucket" "store" {
  name                        = "${var.project}-${var.name}-store"
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = true
  depends_on                  = [google_project_service.apis]
}

resource "google_storage_bucket" "source" {
  name                        = "${var.project}-${var.name}-source"
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = true
  depends_on                  = [google_project_service.apis]
}

resource "google_storage_bucket_object" "artifact" {
  name   = "agentfn-${filesha256(var.artifact)}.zip"
  bucket = google_storage_bucket.source.name
  source = var.artifact
}

# Build images of both functions (instead of the project-wide gcf-artifacts repository).
resource "google_artifact_registry_repository" "functions" {
  location      = var.region
  repository_id = "${var.name}-functions"
  format        = "DOCKER"
  depends_on    = [google_project_service.apis]
}

# ---------------------------------------------------------------- queues

resource "google_pubsub_topic" "work" {
  name       = "${var.name}-work"
  depends_on = [google_project_service.apis]
}

resource "google_pubsub_topic" "dead_letter" {
  name       = "${var.name}-dead-letter"
  depends_on = [google_project_service.apis]
}

# Delivers every job to the worker: a 2xx acks it, anything else is delivered again after
# the backoff. Subscriptions expire after 31 idle days unless told not to.
resource "google_pubsub_subscription" "work" {
  name                       = local.work_subscription
  topic                      = google_pubsub_topic.work.id
  ack_deadline_seconds       = var.timeout_s
  message_retention_duration = "${local.retention_s}s"
  push_config {
    push_endpoint = google_cloudfunctions2_function.worker.service_config[0].uri
    oidc_token {
      service_account_email = google_service_account.trigger.email
      audience              = google_cloudfunctions2_function.worker.service_config[0].uri
    }
  }
  retry_policy {
    minimum_backoff = "10s"
    maximum_backoff = "600s"
  }
  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.dead_letter.id
    max_delivery_attempts = local.max_deliveries
  }
  expiration_policy {
    ttl = ""
  }
  depends_on = [
    google_cloud_run_v2_service_iam_member.trigger_invokes_worker,
    google_service_account_iam_member.agent_signs_for_trigger,
  ]
}

# Keeps dead letters until someone looks at them (a topic alone stores nothing); never expires.
resource "google_pubsub_subscription" "dead_letter" {
  name                       = "${var.name}-dead-letter"
  topic                      = google_pubsub_topic.dead_letter.id
  message_retention_duration = "1209600s"
  ack_deadline_seconds       = 60
  expiration_policy {
    ttl = ""
  }
}

# Pub/Sub's own dead-lettering (the backstop) publishes as its service agent.
resource "google_pubsub_topic_iam_member" "agent_dead_letter" {
  topic  = google_pubsub_topic.dead_letter.id
  role   = "roles/pubsub.publisher"
  member = local.pubsub_agent
}

resource "google_pubsub_subscription_iam_member" "agent_work" {
  subscription = google_pubsub_subscription.work.id
  role         = "roles/pubsub.subscriber"
  member       = local.pubsub_agent
}

# ---------------------------------------------------------------- secrets

resource "google_secret_manager_secret" "api_key" {
  secret_id = "${local.secret_prefix}AGENTFN_API_KEY"
  replication {
    auto {}
  }
  depends_on = [google_project_service.apis]
}

# The model providers' keys the worker reads (add a version with each value after deploy).
resource "google_secret_manager_secret" "model" {
  for_each  = toset(split(",", var.model_secrets))
  secret_id = "${local.secret_prefix}${each.key}"
  replication {
    auto {}
  }
  depends_on = [google_project_service.apis]
}

# ---------------------------------------------------------------- identities

resource "google_service_account" "http" {
  account_id   = "${var.name}-http"
  display_name = "agentfn ${var.name} HTTP function"
  depends_on   = [google_project_service.apis]
}

resource "google_service_account" "worker" {
  account_id   = "${var.name}-worker"
  display_name = "agentfn ${var.name} worker function"
  depends_on   = [google_project_service.apis]
}

# The push subscription's identity: Pub/Sub signs each push with an OIDC token for it.
resource "google_service_account" "trigger" {
  account_id   = "${var.name}-trigger"
  display_name = "agentfn ${var.name} push to the worker"
  depends_on   = [google_project_service.apis]
}

resource "google_service_account" "build" {
  account_id   = "${var.name}-build"
  display_name = "agentfn ${var.name} Cloud Build of the functions"
  depends_on   = [google_project_service.apis]
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

resource "google_secret_manager_secret_iam_member" "worker_model" {
  for_each  = google_secret_manager_secret.model
  secret_id = each.value.id
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${google_service_account.worker.email}"
}

resource "google_cloud_run_v2_service_iam_member" "trigger_invokes_worker" {
  location = google_cloudfunctions2_function.worker.location
  name     = google_cloudfunctions2_function.worker.service_config[0].service
  role     = "roles/run.invoker"
  member   = "serviceAccount:${google_service_account.trigger.email}"
}

# Older projects' Pub/Sub service agent needs this to mint the trigger's OIDC tokens.
resource "google_service_account_iam_member" "agent_signs_for_trigger" {
  service_account_id = google_service_account.trigger.name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = local.pubsub_agent
}

resource "google_project_iam_member" "build_logs" {
  project = var.project
  role    = "roles/logging.logWriter"
  member  = "serviceAccount:${google_service_account.build.email}"
}

resource "google_artifact_registry_repository_iam_member" "build_images" {
  location   = google_artifact_registry_repository.functions.location
  repository = google_artifact_registry_repository.functions.name
  role       = "roles/artifactregistry.writer"
  member     = "serviceAccount:${google_service_account.build.email}"
}

# Gemini on Vertex AI, only with var.vertex_ai: the worker's agent steps, and the planner of a
# collaboration's task, which the HTTP function asks before the run exists. Project level:
# Vertex AI's publisher models are no resource a role can be granted on.
resource "google_project_iam_member" "worker_vertex" {
  count   = var.vertex_ai ? 1 : 0
  project = var.project
  role    = "roles/aiplatform.user"
  member  = "serviceAccount:${google_service_account.worker.email}"
}

resource "google_project_iam_member" "http_vertex" {
  count   = var.vertex_ai ? 1 : 0
  project = var.project
  role    = "roles/aiplatform.user"
  member  = "serviceAccount:${google_service_account.http.email}"
}

resource "google_storage_bucket_iam_member" "build_source" {
  bucket = google_storage_bucket.source.name
  role   = "roles/storage.objectViewer"
  member = "serviceAccount:${google_service_account.build.email}"
}

# ---------------------------------------------------------------- functions

resource "google_cloudfunctions2_function" "http" {
  name     = "${var.name}-http"
  location = var.region
  build_config {
    runtime           = "python311"
    entry_point       = "http"
    service_account   = google_service_account.build.id
    docker_repository = google_artifact_registry_repository.functions.id
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
  depends_on = [
    google_project_iam_member.build_logs,
    google_artifact_registry_repository_iam_member.build_images,
    google_storage_bucket_iam_member.build_source,
  ]
}

# Reached only from inside the project (Pub/Sub's pushes count as internal) and only with
# the trigger's token.
resource "google_cloudfunctions2_function" "worker" {
  name     = "${var.name}-worker"
  location = var.region
  build_config {
    runtime           = "python311"
    entry_point       = "worker"
    service_account   = google_service_account.build.id
    docker_repository = google_artifact_registry_repository.functions.id
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
  depends_on = [
    google_project_iam_member.build_logs,
    google_artifact_registry_repository_iam_member.build_images,
    google_storage_bucket_iam_member.build_source,
  ]
}

# The API is public; it authenticates every request with the API key itself.
resource "google_cloud_run_v2_service_iam_member" "http_public" {
  location = google_cloudfunctions2_function.http.location
  name     = google_cloudfunctions2_function.http.service_config[0].service
  role     = "roles/run.invoker"
  member   = "allUsers"
}

# ---------------------------------------------------------------- logs

# The stack's functions' logs, kept var.log_retention_days in a bucket of the stack's own;
# the project's _Default bucket and its retention are left alone.
resource "google_logging_project_bucket_config" "logs" {
  project        = var.project
  location       = "global"
  bucket_id      = "${var.name}-functions"
  retention_days = var.log_retention_days
  depends_on     = [google_project_service.apis]
}

resource "google_logging_project_sink" "functions" {
  name        = "${var.name}-functions"
  destination = "logging.googleapis.com/${google_logging_project_bucket_config.logs.id}"
  filter      = local.log_filter
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
  depends_on = [google_project_service.apis]
}
