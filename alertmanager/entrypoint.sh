#!/bin/sh
# Fill the ${...} placeholders of alertmanager.yml.tmpl from the environment, then start
# Alertmanager. Refuses to start with a placeholder left empty.
set -eu
template=/etc/alertmanager/alertmanager.yml.tmpl
config=/tmp/alertmanager.yml
cp "$template" "$config"
for name in ALERT_SMTP_SMARTHOST ALERT_EMAIL_FROM ALERT_SMTP_USERNAME ALERT_EMAIL_TO ALERT_SLACK_CHANNEL \
            ALERT_SMS_WEBHOOK_URL ALERT_WEBHOOK_URL; do
    value=$(printenv "$name" || true)
    if [ -z "$value" ]; then
        echo "alertmanager: $name is not set (see .env.example)" >&2
        exit 1
    fi
    escaped=$(printf '%s' "$value" | sed 's/[|&\\]/\\&/g')
    sed -i "s|\${$name}|$escaped|g" "$config"
done
exec /bin/alertmanager --config.file="$config" --storage.path=/alertmanager "$@"
