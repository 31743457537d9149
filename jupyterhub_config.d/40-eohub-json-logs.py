# eohub drop-in 40: structured JSON logs, when $EOHUB_LOG_FORMAT=json (`text`, or unset,
# keeps JupyterHub's text lines and this file does nothing).
#
# The hub's, tornado's and eohub's lines become one JSON object each on stderr, with
# eohub's fields (user, server, group...) as keys; the access log gets its parts as keys
# (method, path without credentials, status, user, duration_ms, remote_addr); secrets
# are never written. eohub's managed services (30's accounting service, 35's storage
# sampler) get EOHUB_LOG_FORMAT=json unless their entry sets it, so they log JSON too.
# Your logging_config (a log file, levels), set before or after this file, is kept.
# In text mode eohub's plugins still keep secrets out of the hub's lines (tokens in
# URLs, session ids). Field list, ingest mapping: docs "Send JSON logs to Elasticsearch".
from eohub.json_logs import log_format_from_environment
from eohub.logs import json_logging

c = globals().get("c") or get_config()

# A value other than json or text stops the hub here, naming the variable.
if log_format_from_environment() == "json":
    json_logging(c)
