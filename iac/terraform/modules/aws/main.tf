# agentfn on AWS: HTTP API + Lambda, an SQS-triggered worker Lambda, an S3 bucket, a work
# queue with its dead-letter queue, a secret for the API key, least-privilege roles, an alarm
# on dead-letter depth, and log retention. The same logical stack as modules/gcp and
# modules/azure (see iac/manifest.json).

data "aws_caller_identity" "current" {}

locals {
  project_dir = "/var/task/project"
  # Bucket names are global across every AWS account: the account id and region make this
  # one unique without a random suffix (no extra provider; the name stays stable and findable).
  bucket = "${var.name}-${data.aws_caller_identity.current.account_id}-${var.region}"
  # Every secret of the stack: the API key and the model keys (`<name>/OPENAI_API_KEY`, ...).
  stack_secrets = "arn:aws:secretsmanager:${var.region}:${data.aws_caller_identity.current.account_id}:secret:${var.name}/*"
  # SQS redrives a job only after the engine had its chance: the engine ends a job's run by
  # its max_attempts-th delivery (AGENTFN_MAX_ATTEMPTS), so SQS allows one delivery more, or it
  # moves jobs the engine never failed and the run stays `running`.
  max_receive_count = var.max_attempts + 1
  # The Bedrock foundation models the functions may invoke (var.bedrock_models): none by
  # default, and then no Bedrock statement and no Bedrock host at all.
  bedrock_models = [for id in var.bedrock_models : "arn:aws:bedrock:${var.region}::foundation-model/${id}"]
  # The hosts a blueprint's models may reach (the code's AGENTFN_MODEL_HOSTS allow-list):
  # OpenAI's, and Bedrock Runtime's in the stack's region once a model is granted.
  model_hosts = join(",", compact([
    "api.openai.com",
    length(var.bedrock_models) > 0 ? "bedrock-runtime.${var.region}.amazonaws.com" : "",
  ]))
  environment = {
    AGENTFN_STORAGE         = "s3://${aws_s3_bucket.store.bucket}"
    AGENTFN_QUEUE           = "sqs://${aws_sqs_queue.work.name}"
    AGENTFN_SECRETS         = "aws-sm://${var.name}/"
    AGENTFN_PROJECT         = local.project_dir
    AGENTFN_TOOL_MODULES    = "tools.py"
    AGENTFN_MODEL_HOSTS     = local.model_hosts
    AGENTFN_MEMORY_SEARCH   = var.memory_search # the facts' search index; "" is none (text match)
    AGENTFN_MAX_ATTEMPTS    = tostring(var.max_attempts)
    AGENTFN_LEASE_S         = tostring(var.timeout_s)
    AGENTFN_STEP_TIMEOUT_S  = tostring(var.timeout_s - 5) # a step ends before its function
    POWERTOOLS_SERVICE_NAME = var.name
    # Tracing is off: the Powertools Tracer needs the X-Ray SDK, which the zip does not ship,
    # and would put hundreds of milliseconds of imports on every cold start (docs/deploy/aws.md).
    POWERTOOLS_TRACE_DISABLED = "true"
  }
}

# ---------------------------------------------------------------- storage

resource "aws_s3_bucket" "store" {
  bucket        = local.bucket
  force_destroy = true
}

# The S3 adapter uploads large objects in parts; an upload cut short (a function timing out
# mid-write) leaves parts that are billed and invisible until aborted.
resource "aws_s3_bucket_lifecycle_configuration" "store" {
  bucket = aws_s3_bucket.store.id
  rule {
    id     = "abort-incomplete-multipart-uploads"
    status = "Enabled"
    filter {}
    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }
}

resource "aws_s3_bucket_public_access_block" "store" {
  bucket                  = aws_s3_bucket.store.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

# ---------------------------------------------------------------- queues

resource "aws_sqs_queue" "dead_letter" {
  name                      = "${var.name}-dead-letter"
  message_retention_seconds = 1209600
}

resource "aws_sqs_queue" "work" {
  name                       = "${var.name}-work"
  visibility_timeout_seconds = var.timeout_s * 6
  message_retention_seconds  = 345600
  lifecycle {
    # Owned by aws_sqs_queue_redrive_policy.work below; the queue only reflects it.
    ignore_changes = [redrive_policy]
  }
}

# A separate resource, so the policy is compared as JSON rather than as the queue's string
# attribute (some endpoints echo it back with other whitespace).
resource "aws_sqs_queue_redrive_policy" "work" {
  queue_url = aws_sqs_queue.work.id
  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.dead_letter.arn
    maxReceiveCount     = local.max_receive_count
  })
}

# ---------------------------------------------------------------- secret

resource "aws_secretsmanager_secret" "api_key" {
  name                    = "${var.name}/AGENTFN_API_KEY"
  description             = "API key of the ${var.name} agentfn stack (set its value after deploy)."
  recovery_window_in_days = 0
}

# ---------------------------------------------------------------- identities

data "aws_iam_policy_document" "lambda_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "http" {
  name               = "${var.name}-http"
  assume_role_policy = data.aws_iam_policy_document.lambda_assume.json
}

resource "aws_iam_role" "worker" {
  name               = "${var.name}-worker"
  assume_role_policy = data.aws_iam_policy_document.lambda_assume.json
}

# Each grant below is a row of the "Who calls what" table in docs/deploy/aws.md, and each row
# is a grant here (tests/e2e/test_permissions_aws.py checks both ways).

# The HTTP function: read/write the bucket, start runs (send jobs), read the API key, and the
# planner's model when Bedrock models are granted.
data "aws_iam_policy_document" "http" {
  statement {
    sid       = "Bucket"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"]
    resources = ["${aws_s3_bucket.store.arn}/*"]
  }
  statement {
    sid       = "List"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.store.arn]
  }
  statement {
    sid       = "Enqueue"
    actions   = ["sqs:SendMessage", "sqs:GetQueueUrl", "sqs:GetQueueAttributes"]
    resources = [aws_sqs_queue.work.arn]
  }
  statement {
    sid       = "ApiKey"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [aws_secretsmanager_secret.api_key.arn]
  }
  statement {
    sid       = "Logs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.http.arn}:*"]
  }
  # Bedrock, for the planner of a collaboration's task (POST /v1/collaborations asks it
  # before the run exists): Converse is bedrock:InvokeModel, on the models of
  # var.bedrock_models only, and no statement at all when there are none.
  dynamic "statement" {
    for_each = length(var.bedrock_models) > 0 ? [1] : []
    content {
      sid       = "Models"
      actions   = ["bedrock:InvokeModel"]
      resources = local.bedrock_models
    }
  }
}

# The worker: its trigger (the event source mapping polls with this role), retry delays
# (ChangeMessageVisibility), next steps (SendMessage), dead letters, the bucket, model keys,
# Bedrock models when granted.
data "aws_iam_policy_document" "worker" {
  statement {
    sid       = "Trigger"
    actions   = ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"]
    resources = [aws_sqs_queue.work.arn]
  }
  statement {
    sid       = "Work"
    actions   = ["sqs:SendMessage", "sqs:ChangeMessageVisibility", "sqs:GetQueueUrl"]
    resources = [aws_sqs_queue.work.arn]
  }
  statement {
    sid       = "DeadLetter"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.dead_letter.arn]
  }
  statement {
    sid       = "Bucket"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"]
    resources = ["${aws_s3_bucket.store.arn}/*"]
  }
  statement {
    sid       = "List"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.store.arn]
  }
  statement {
    sid       = "Secrets"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [local.stack_secrets]
  }
  statement {
    sid       = "Logs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.worker.arn}:*"]
  }
  # Bedrock, for agent steps: Converse is bedrock:InvokeModel, on the models of
  # var.bedrock_models only, and no statement at all when there are none.
  dynamic "statement" {
    for_each = length(var.bedrock_models) > 0 ? [1] : []
    content {
      sid       = "Models"
      actions   = ["bedrock:InvokeModel"]
      resources = local.bedrock_models
    }
  }
}

resource "aws_iam_role_policy" "http" {
  name   = "${var.name}-http"
  role   = aws_iam_role.http.id
  policy = data.aws_iam_policy_document.http.json
}

resource "aws_iam_role_policy" "worker" {
  name   = "${var.name}-worker"
  role   = aws_iam_role.worker.id
  policy = data.aws_iam_policy_document.worker.json
}

# ---------------------------------------------------------------- logs

resource "aws_cloudwatch_log_group" "http" {
  name              = "/aws/lambda/${var.name}-http"
  retention_in_days = var.log_retention_days
}

resource "aws_cloudwatch_log_group" "worker" {
  name              = "/aws/lambda/${var.name}-worker"
  retention_in_days = var.log_retention_days
}

# ---------------------------------------------------------------- functions

resource "aws_lambda_function" "http" {
  function_name    = "${var.name}-http"
  role             = aws_iam_role.http.arn
  runtime          = "python3.11" # agentfn package builds for CPython 3.11 on x86_64
  architectures    = ["x86_64"]
  handler          = "agentfn.functions.aws.http.handler"
  filename         = var.artifact
  source_code_hash = filebase64sha256(var.artifact)
  memory_size      = var.memory_mb
  timeout          = var.timeout_s
  environment {
    variables = local.environment
  }
  depends_on = [aws_cloudwatch_log_group.http]
}

resource "aws_lambda_function" "worker" {
  function_name    = "${var.name}-worker"
  role             = aws_iam_role.worker.arn
  runtime          = "python3.11" # agentfn package builds for CPython 3.11 on x86_64
  architectures    = ["x86_64"]
  handler          = "agentfn.functions.aws.worker.handler"
  filename         = var.artifact
  source_code_hash = filebase64sha256(var.artifact)
  memory_size      = var.memory_mb
  timeout          = var.timeout_s
  environment {
    variables = local.environment
  }
  depends_on = [aws_cloudwatch_log_group.worker]
}

# One job per invocation: each step gets the function's whole timeout (a batch of slow steps
# would run one after another inside one), and jobs run side by side in up to
# worker_concurrency instances instead.
resource "aws_lambda_event_source_mapping" "worker" {
  event_source_arn        = aws_sqs_queue.work.arn
  function_name           = aws_lambda_function.worker.arn
  batch_size              = 1
  function_response_types = ["ReportBatchItemFailures"]
  scaling_config {
    maximum_concurrency = var.worker_concurrency
  }
}

# ---------------------------------------------------------------- HTTP API

resource "aws_apigatewayv2_api" "http" {
  name          = "${var.name}-api"
  protocol_type = "HTTP"
}

resource "aws_apigatewayv2_integration" "http" {
  api_id                 = aws_apigatewayv2_api.http.id
  integration_type       = "AWS_PROXY"
  integration_uri        = aws_lambda_function.http.invoke_arn
  payload_format_version = "2.0"
}

resource "aws_apigatewayv2_route" "default" {
  api_id    = aws_apigatewayv2_api.http.id
  route_key = "$default"
  target    = "integrations/${aws_apigatewayv2_integration.http.id}"
}

resource "aws_apigatewayv2_stage" "default" {
  api_id      = aws_apigatewayv2_api.http.id
  name        = "$default"
  auto_deploy = true
}

resource "aws_lambda_permission" "api" {
  statement_id  = "AllowApiGateway"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.http.function_name
  principal     = "apigateway.amazonaws.com"
  source_arn    = "${aws_apigatewayv2_api.http.execution_arn}/*/*"
}

# ---------------------------------------------------------------- alarm

resource "aws_cloudwatch_metric_alarm" "dead_letters" {
  alarm_name          = "${var.name}-dead-letters"
  alarm_description   = "Jobs reached the dead-letter queue: inspect them with `agentfn` and the run errors."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  dimensions          = { QueueName = aws_sqs_queue.dead_letter.name }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
}
