# agentfn on Azure: a Function App serving the HTTP trigger, a second Function App running the
# Storage Queue-triggered worker (separate identities), a blob container, a work queue with
# its poison queue, a Key Vault secret for the API key, least-privilege role assignments, an
# alert on dead-letter depth, and log retention. The same logical stack as modules/aws and
# modules/gcp.
#
# Both apps run from the artifact zip (built with its .python_packages: nothing is built on
# Azure), uploaded as a blob named by its sha256, so new code gives a new package URL and a
# new deployment. The queue URL keeps every priority in the one queue the trigger listens to.

data "azurerm_client_config" "current" {}

locals {
  queue_name  = "${var.name}-work"
  poison_name = "${var.name}-work-poison"
  # An existing Azure OpenAI account (var.openai_account) the functions may call with their
  # identities; the host of its endpoint is the one its models are reached at.
  openai_host = var.openai_account == null ? "" : lower(regex("^https://([^/:]+)", var.openai_account.endpoint)[0])
  # The hosts a blueprint's models may reach (the code's AGENTFN_MODEL_HOSTS allow-list):
  # OpenAI's, and the Azure OpenAI account's once one is given.
  model_hosts = join(",", compact(["api.openai.com", local.openai_host]))
  # The account an azure-openai blueprint without base_url calls ("" while none is given)
  openai_endpoint = var.openai_account == null ? "" : var.openai_account.endpoint
  environment = {
    AGENTFN_STORAGE                                            = "az://${azurerm_storage_account.main.name}/${azurerm_storage_container.store.name}"
    AGENTFN_QUEUE                                              = "azqueue://${azurerm_storage_account.main.name}/${local.queue_name}?priorities=message"
    AGENTFN_QUEUE_NAME                                         = local.queue_name
    AGENTFN_SECRETS                                            = "keyvault://${azurerm_key_vault.main.name}"
    AGENTFN_PROJECT                                            = "/home/site/wwwroot/project"
    AGENTFN_TOOL_MODULES                                       = "tools.py"
    AGENTFN_MEMORY_SEARCH                                      = var.memory_search # the facts' search index; "" is none (text match)
    AGENTFN_MODEL_HOSTS                                        = local.model_hosts
    AZURE_OPENAI_ENDPOINT                                      = local.openai_endpoint
    AGENTFN_MAX_ATTEMPTS                                       = tostring(var.max_attempts)
    AGENTFN_LEASE_S                                            = tostring(var.timeout_s)
    AGENTFN_STEP_TIMEOUT_S                                     = tostring(var.timeout_s - 5) # a step ends before its function
    AzureFunctionsJobHost__extensions__queues__maxDequeueCount = tostring(var.max_attempts)
  }
  # How both apps run (beside the agentfn environment). No FUNCTIONS_WORKER_RUNTIME or
  # FUNCTIONS_EXTENSION_VERSION: azurerm sets them from application_stack and
  # functions_extension_version, and repeating them here is a perpetual diff.
  host_settings = {
    WEBSITE_RUN_FROM_PACKAGE                     = azurerm_storage_blob.package.url
    WEBSITE_RUN_FROM_PACKAGE_BLOB_MI_RESOURCE_ID = "SystemAssigned"
    SCM_DO_BUILD_DURING_DEPLOYMENT               = "false"
    ENABLE_ORYX_BUILD                            = "false"
    # The queue trigger's identity-based connection (function_app.QUEUE_CONNECTION).
    AgentfnQueue__queueServiceUri          = azurerm_storage_account.main.primary_queue_endpoint
    AzureFunctionsJobHost__functionTimeout = format("00:%02d:%02d", floor(var.timeout_s / 60), var.timeout_s % 60)
  }
  # Each app runs one of the two functions of the same package.
  http_settings   = { "AzureWebJobs.worker.Disabled" = "true" }
  worker_settings = { "AzureWebJobs.http.Disabled" = "true" }
}

resource "azurerm_resource_group" "main" {
  name     = "${var.name}-rg"
  location = var.location
}

# ---------------------------------------------------------------- storage

resource "azurerm_storage_account" "main" {
  name                            = "${var.name}store"
  resource_group_name             = azurerm_resource_group.main.name
  location                        = azurerm_resource_group.main.location
  account_tier                    = "Standard"
  account_replication_type        = "LRS"
  min_tls_version                 = "TLS1_2"
  allow_nested_items_to_be_public = false
}

resource "azurerm_storage_container" "store" {
  name                  = "agentfn"
  storage_account_id    = azurerm_storage_account.main.id
  container_access_type = "private"
}

# ---------------------------------------------------------------- queues

resource "azurerm_storage_queue" "work" {
  name               = local.queue_name
  storage_account_id = azurerm_storage_account.main.id
}

resource "azurerm_storage_queue" "dead_letter" {
  name               = local.poison_name
  storage_account_id = azurerm_storage_account.main.id
}

# ---------------------------------------------------------------- package

resource "azurerm_storage_container" "packages" {
  name                  = "agentfn-packages"
  storage_account_id    = azurerm_storage_account.main.id
  container_access_type = "private"
}

resource "azurerm_storage_blob" "package" {
  # Named by content: a new artifact is a new blob, a new WEBSITE_RUN_FROM_PACKAGE URL and so
  # a redeploy; the same artifact changes nothing.
  name                 = "agentfn-${filesha256(var.artifact)}.zip"
  storage_container_id = azurerm_storage_container.packages.id
  type                 = "Block"
  source               = var.artifact
  content_md5          = filemd5(var.artifact)
  content_type         = "application/zip"
  lifecycle {
    create_before_destroy = true # the apps switch URLs before the old package goes
  }
}

# ---------------------------------------------------------------- secret

resource "azurerm_key_vault" "main" {
  name                       = "${var.name}-kv"
  location                   = azurerm_resource_group.main.location
  resource_group_name        = azurerm_resource_group.main.name
  tenant_id                  = data.azurerm_client_config.current.tenant_id
  sku_name                   = "standard"
  rbac_authorization_enabled = true
  purge_protection_enabled   = false
}

resource "azurerm_role_assignment" "deployer_secrets" {
  scope                = azurerm_key_vault.main.id
  role_definition_name = "Key Vault Secrets Officer"
  principal_id         = data.azurerm_client_config.current.object_id
}

# A generated key, written once (write-only: never in the plan or the state). Rotate it by
# bumping api_key_version, or set your own with `az keyvault secret set`; read it with
# `az keyvault secret show` (docs/deploy/azure.md).
ephemeral "random_password" "api_key" {
  length  = 48
  special = false
}

resource "azurerm_key_vault_secret" "api_key" {
  name             = "AGENTFN-API-KEY"
  value_wo         = ephemeral.random_password.api_key.result
  value_wo_version = var.api_key_version
  content_type     = "agentfn API key"
  key_vault_id     = azurerm_key_vault.main.id
  depends_on       = [azurerm_role_assignment.deployer_secrets]
}

# ---------------------------------------------------------------- logs

resource "azurerm_log_analytics_workspace" "main" {
  name                = "${var.name}-logs"
  location            = azurerm_resource_group.main.location
  resource_group_name = azurerm_resource_group.main.name
  sku                 = "PerGB2018"
  retention_in_days   = var.log_retention_days
}

resource "azurerm_application_insights" "main" {
  name                = "${var.name}-insights"
  location            = azurerm_resource_group.main.location
  resource_group_name = azurerm_resource_group.main.name
  workspace_id        = azurerm_log_analytics_workspace.main.id
  application_type    = "other"
  retention_in_days   = var.log_retention_days
}

# ---------------------------------------------------------------- functions

resource "azurerm_service_plan" "main" {
  name                = "${var.name}-plan"
  resource_group_name = azurerm_resource_group.main.name
  location            = azurerm_resource_group.main.location
  os_type             = "Linux"
  sku_name            = "Y1"
}

resource "azurerm_linux_function_app" "http" {
  name                       = "${var.name}-http"
  resource_group_name        = azurerm_resource_group.main.name
  location                   = azurerm_resource_group.main.location
  service_plan_id            = azurerm_service_plan.main.id
  storage_account_name       = azurerm_storage_account.main.name
  storage_account_access_key = azurerm_storage_account.main.primary_access_key
  https_only                 = true
  identity {
    type = "SystemAssigned"
  }
  site_config {
    application_insights_connection_string = azurerm_application_insights.main.connection_string
    application_stack {
      python_version = "3.11"
    }
  }
  app_settings = merge(local.environment, local.host_settings, local.http_settings)
}

resource "azurerm_linux_function_app" "worker" {
  name                       = "${var.name}-worker"
  resource_group_name        = azurerm_resource_group.main.name
  location                   = azurerm_resource_group.main.location
  service_plan_id            = azurerm_service_plan.main.id
  storage_account_name       = azurerm_storage_account.main.name
  storage_account_access_key = azurerm_storage_account.main.primary_access_key
  https_only                 = true
  identity {
    type = "SystemAssigned"
  }
  site_config {
    application_insights_connection_string = azurerm_application_insights.main.connection_string
    application_stack {
      python_version = "3.11"
    }
  }
  app_settings = merge(local.environment, local.host_settings, local.worker_settings)
}

# ---------------------------------------------------------------- identities

resource "azurerm_role_assignment" "http_blobs" {
  scope                = azurerm_storage_container.store.id
  role_definition_name = "Storage Blob Data Contributor"
  principal_id         = azurerm_linux_function_app.http.identity[0].principal_id
}

resource "azurerm_role_assignment" "http_enqueue" {
  scope                = azurerm_storage_queue.work.id
  role_definition_name = "Storage Queue Data Message Sender"
  principal_id         = azurerm_linux_function_app.http.identity[0].principal_id
}

resource "azurerm_role_assignment" "http_secrets" {
  # The HTTP app reads one secret, the API key: granted on that secret alone.
  scope                = azurerm_key_vault_secret.api_key.resource_versionless_id
  role_definition_name = "Key Vault Secrets User"
  principal_id         = azurerm_linux_function_app.http.identity[0].principal_id
}

resource "azurerm_role_assignment" "worker_blobs" {
  scope                = azurerm_storage_container.store.id
  role_definition_name = "Storage Blob Data Contributor"
  principal_id         = azurerm_linux_function_app.worker.identity[0].principal_id
}

resource "azurerm_role_assignment" "worker_queue" {
  scope                = azurerm_storage_queue.work.id
  role_definition_name = "Storage Queue Data Contributor"
  principal_id         = azurerm_linux_function_app.worker.identity[0].principal_id
}

resource "azurerm_role_assignment" "worker_dead_letter" {
  scope                = azurerm_storage_queue.dead_letter.id
  role_definition_name = "Storage Queue Data Contributor"
  principal_id         = azurerm_linux_function_app.worker.identity[0].principal_id
}

resource "azurerm_role_assignment" "http_package" {
  scope                = azurerm_storage_container.packages.id
  role_definition_name = "Storage Blob Data Reader"
  principal_id         = azurerm_linux_function_app.http.identity[0].principal_id
}

resource "azurerm_role_assignment" "worker_package" {
  scope                = azurerm_storage_container.packages.id
  role_definition_name = "Storage Blob Data Reader"
  principal_id         = azurerm_linux_function_app.worker.identity[0].principal_id
}

# `agentfn deploy` records each version (and a copy of its artifact) under deployments/ in the
# store container, signed in as whoever runs Terraform.
resource "azurerm_role_assignment" "deployer_blobs" {
  scope                = azurerm_storage_container.store.id
  role_definition_name = "Storage Blob Data Contributor"
  principal_id         = data.azurerm_client_config.current.object_id
}

resource "azurerm_role_assignment" "worker_secrets" {
  scope                = azurerm_key_vault.main.id
  role_definition_name = "Key Vault Secrets User"
  principal_id         = azurerm_linux_function_app.worker.identity[0].principal_id
}

# Azure OpenAI, only with var.openai_account: the worker's agent steps, and the planner of a
# collaboration's task, which the HTTP app asks before the run exists. On that one account.
resource "azurerm_role_assignment" "worker_openai" {
  count                = var.openai_account == null ? 0 : 1
  scope                = var.openai_account.id
  role_definition_name = "Cognitive Services OpenAI User"
  principal_id         = azurerm_linux_function_app.worker.identity[0].principal_id
}

resource "azurerm_role_assignment" "http_openai" {
  count                = var.openai_account == null ? 0 : 1
  scope                = var.openai_account.id
  role_definition_name = "Cognitive Services OpenAI User"
  principal_id         = azurerm_linux_function_app.http.identity[0].principal_id
}

# ---------------------------------------------------------------- alert

resource "azurerm_monitor_scheduled_query_rules_alert_v2" "dead_letters" {
  name                 = "${var.name}-dead-letters"
  resource_group_name  = azurerm_resource_group.main.name
  location             = azurerm_resource_group.main.location
  scopes               = [azurerm_application_insights.main.id]
  description          = "Jobs reached the poison queue: inspect them and the failed runs' errors."
  severity             = 2
  evaluation_frequency = "PT5M"
  window_duration      = "PT5M"
  criteria {
    query                   = "traces | where message has 'step dead-lettered'"
    time_aggregation_method = "Count"
    operator                = "GreaterThan"
    threshold               = 0
  }
}
