# The vitalstream service image used by docker-compose.yml.
FROM python:3.11-slim-bookworm

WORKDIR /src
COPY . /src
RUN pip install --no-cache-dir /src \
    && useradd --system --uid 10001 --home-dir /var/lib/vitalstream --create-home vitalstream

# Relative paths (the InfluxDB outage spool) land in a volume the service user owns.
WORKDIR /var/lib/vitalstream
USER vitalstream
EXPOSE 9108
CMD ["vitalstream", "run", "--config", "/etc/vitalstream/site.yaml"]
