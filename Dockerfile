# The registry as a container image: `docker compose up` or `docker build -t pyregistry .`
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY registry ./registry
COPY storage_backends ./storage_backends
COPY migrations ./migrations
RUN pip install --no-cache-dir . && mkdir -p /var/lib/registry /etc/docker/registry
COPY config.example.yml /etc/docker/registry/config.yml
VOLUME ["/var/lib/registry"]
EXPOSE 5000
ENTRYPOINT ["registry"]
CMD ["serve", "/etc/docker/registry/config.yml"]
