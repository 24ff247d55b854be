"""Fixed vocabularies the generator draws from (realistic values, taken from Sentry's examples)."""

from __future__ import annotations

__all__ = [
    "BROWSERS",
    "CITIES",
    "COMMIT_MESSAGES",
    "CSP_VIOLATIONS",
    "ENVIRONMENTS",
    "ERRORS",
    "EXTRA_PLATFORMS",
    "FEEDBACK_COMMENTS",
    "LOCALES",
    "MESSAGES",
    "MONITORS",
    "OSES",
    "PENDING_INVITE",
    "PEOPLE",
    "PERFORMANCE_PROBLEMS",
    "PLATFORMS",
    "PROJECT_SLUGS",
    "RUNTIMES",
    "SDKS",
    "SERVERS",
    "TEAM_SLUGS",
    "TRANSACTIONS",
    "UPTIME_CHECKS",
]

PROJECT_SLUGS = ["backend", "frontend", "mobile"]
# slug -> platform; other projects cycle through these.
PLATFORMS = {"backend": "python", "frontend": "javascript", "mobile": "react-native"}
EXTRA_PLATFORMS = ["python", "javascript", "node", "go", "java"]

# (exception type, value, filename, function, module) per platform family.
ERRORS: dict[str, list[tuple[str, str, str, str, str]]] = {
    "python": [
        ("KeyError", "'user_id'", "app/views/users.py", "get_user", "app.views.users"),
        ("ValueError", "invalid literal for int() with base 10: 'abc'", "app/forms.py", "clean_age", "app.forms"),
        ("ZeroDivisionError", "division by zero", "app/billing/rates.py", "per_seat", "app.billing.rates"),
        ("ConnectionError", "Connection refused", "app/clients/payments.py", "charge", "app.clients.payments"),
        ("TimeoutError", "Operation timed out after 30s", "app/tasks/sync.py", "run_sync", "app.tasks.sync"),
        ("AttributeError", "'NoneType' object has no attribute 'id'", "app/api/orders.py", "serialize", "app.api.orders"),
        ("IntegrityError", "duplicate key value violates unique constraint \"users_email_key\"", "app/models.py", "save", "app.models"),
        ("OperationalError", "could not connect to server: Connection refused", "app/db.py", "connect", "app.db"),
    ],
    "javascript": [
        ("TypeError", "Cannot read properties of undefined (reading 'map')", "src/components/List.tsx", "render", "components/List"),
        ("ReferenceError", "gtag is not defined", "src/analytics.ts", "track", "analytics"),
        ("Error", "Network request failed", "src/api/client.ts", "request", "api/client"),
        ("ChunkLoadError", "Loading chunk 42 failed.", "src/bootstrap.ts", "loadRoute", "bootstrap"),
        ("SyntaxError", "Unexpected token '<', \"<!DOCTYPE \"... is not valid JSON", "src/api/json.ts", "parse", "api/json"),
        ("UnhandledRejection", "Non-Error promise rejection captured with value: undefined", "src/index.tsx", "main", "index"),
        ("RangeError", "Maximum call stack size exceeded", "src/utils/tree.ts", "walk", "utils/tree"),
    ],
}
ERRORS["react-native"] = ERRORS["javascript"]
ERRORS["node"] = ERRORS["javascript"]
ERRORS["go"] = ERRORS["python"]
ERRORS["java"] = ERRORS["python"]

SDKS = {
    "python": ("sentry.python", "2.19.2"),
    "javascript": ("sentry.javascript.browser", "8.42.0"),
    "react-native": ("sentry.javascript.react-native", "6.3.0"),
    "node": ("sentry.javascript.node", "8.42.0"),
    "go": ("sentry.go", "0.30.0"),
    "java": ("sentry.java", "7.18.1"),
}

TEAM_SLUGS = ["platform", "web", "mobile-team", "data"]
PEOPLE = [
    ("Ada Lovelace", "ada@example.com", "owner"),
    ("Grace Hopper", "grace@example.com", "manager"),
    ("Alan Turing", "alan@example.com", "admin"),
    ("Edsger Dijkstra", "edsger@example.com", "member"),
    ("Barbara Liskov", "barbara@example.com", "member"),
    ("Ken Thompson", "ken@example.com", "member"),
]
PENDING_INVITE = ("", "new.hire@example.com", "member")
ENVIRONMENTS = [("production", False), ("staging", False), ("development", False), ("local", True)]
BROWSERS = ["Chrome 131.0.0", "Firefox 133.0", "Safari 18.1", "Edge 131.0.0"]
OSES = ["Windows 10", "Mac OS X 14.6", "Linux", "iOS 18.1", "Android 14"]
SERVERS = ["web-1.example.com", "web-2.example.com", "worker-1.example.com"]
COMMIT_MESSAGES = [
    "fix(api): handle missing user id",
    "feat(billing): per-seat pricing",
    "chore: bump dependencies",
    "fix(ui): guard empty list rendering",
    "ref(db): pool connections",
    "feat(sync): retry transient errors",
]
# (slug, name, interval in minutes)
MONITORS = [("nightly-backup", "Nightly backup", 1440), ("hourly-sync", "Hourly sync", 60),
            ("email-digest", "Email digest", 360)]

# Issues beyond exceptions. Messages (captureMessage, logging): (message, logger, level).
MESSAGES: dict[str, list[tuple[str, str, str]]] = {
    "python": [
        ("Payment provider returned HTTP 502", "app.payments", "error"),
        ("Retrying sync job after 3 failures", "app.tasks", "warning"),
        ("Cache hit ratio fell below 60%", "app.cache", "warning"),
        ("Export for organization 1182 exceeded 10,000 rows", "app.exports", "info"),
    ],
    "javascript": [
        ("Failed to load feature flags", "console", "warning"),
        ("WebSocket closed before the handshake completed", "console", "error"),
        ("Slow render of OrderTable (1830 ms)", "console", "info"),
    ],
}
MESSAGES["react-native"] = MESSAGES["javascript"]
MESSAGES["node"] = MESSAGES["javascript"]
MESSAGES["go"] = MESSAGES["python"]
MESSAGES["java"] = MESSAGES["python"]
# Content-Security-Policy reports (browser projects): (effective directive, blocked host).
CSP_VIOLATIONS = [("script-src", "evil.example.com"), ("img-src", "tracker.example.net"),
                  ("connect-src", "api.thirdparty.example"), ("font-src", "fonts.example.org")]
# Performance issues: (issueType, group type id, title, offending span description, span op).
PERFORMANCE_PROBLEMS = [
    ("performance_n_plus_one_db_queries", 1006, "N+1 Query",
     'SELECT "orders_item"."id", "orders_item"."sku" FROM "orders_item" WHERE "orders_item"."order_id" = %s', "db"),
    ("performance_slow_db_query", 1001, "Slow DB Query",
     'SELECT * FROM "events" WHERE "project_id" = %s ORDER BY "timestamp" DESC LIMIT 100', "db"),
    ("performance_n_plus_one_api_calls", 1010, "N+1 API Call", "GET /api/items/*/", "http.client"),
    ("performance_consecutive_http", 1009, "Consecutive HTTP", "GET /api/prices/", "http.client"),
    ("performance_large_http_payload", 1015, "Large HTTP payload", "GET /static/bundle.js", "http.client"),
    ("performance_render_blocking_asset_span", 1004, "Large Render Blocking Asset",
     "https://cdn.acme.example/app.css", "resource.link"),
]
TRANSACTIONS = ["/api/orders/", "/api/checkout/", "/api/users/{user_id}/", "/dashboard", "/api/search/"]
# Uptime monitors: (url, failure reason).
UPTIME_CHECKS = [("https://status.acme.example", "HTTP 503 Service Unavailable"),
                 ("https://api.acme.example/health", "Connection timed out after 10 s")]
FEEDBACK_COMMENTS = ["The export button does nothing.", "Checkout keeps spinning forever",
                     "Dark mode hides the save button", "I was charged twice!!"]
# Contexts: runtimes by platform (name, version), user locales and geo (country, city, region).
RUNTIMES = {"python": ("CPython", "3.12.4"), "node": ("node", "v20.11.1"), "react-native": ("hermes", "0.12.0"),
            "go": ("go", "go1.22.5"), "java": ("OpenJDK", "21.0.3")}
LOCALES = [("en-US", "America/New_York"), ("de-DE", "Europe/Berlin"), ("fr-FR", "Europe/Paris"),
           ("ja-JP", "Asia/Tokyo"), ("pt-BR", "America/Sao_Paulo")]
CITIES = [("US", "San Francisco", "United States"), ("DE", "Berlin", "Germany"), ("FR", "Paris", "France"),
          ("JP", "Tokyo", "Japan"), ("BR", "São Paulo", "Brazil"), ("IN", "Bengaluru", "India")]
