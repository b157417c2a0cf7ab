FROM python:3.11-slim

# No .pyc files in the image layers, and logs reach `docker compose logs` without buffering.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

COPY pyproject.toml README.md ./
COPY orchestrator ./orchestrator
COPY workers ./workers
COPY dags ./dags

# psycopg[binary] ships its own libpq, so the slim image needs no compiler or system packages.
RUN pip install --no-cache-dir '.[postgres,mysql]'

# Workers run user DAG code: never as root.
RUN useradd --create-home --uid 10001 orch && chown -R orch:orch /app
USER orch

ENV ORCH_DAGS_PATH=/app/dags

CMD ["orchestrator", "worker"]
