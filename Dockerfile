# The faddl image: the API (`faddl serve`), the worker (`faddl worker`), migrations and the
# Streamlit dashboard (`streamlit run dashboards/app.py`).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 UV_PYTHON_DOWNLOADS=never UV_COMPILE_BYTECODE=1 \
    UV_PROJECT_ENVIRONMENT=/opt/venv PATH=/opt/venv/bin:$PATH VAR_DIR=/var/lib/faddl
RUN pip install --no-cache-dir uv && useradd --create-home --uid 10001 faddl \
    && mkdir -p /var/lib/faddl && chown faddl /var/lib/faddl
WORKDIR /app
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev --no-install-project
COPY api ./api
COPY simulator ./simulator
COPY analytics ./analytics
COPY dashboards ./dashboards
COPY docs ./docs
RUN uv sync --frozen --no-dev

USER faddl
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --retries=3 \
    CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/api/health/live').status != 200)"
CMD ["faddl", "serve", "--host", "0.0.0.0", "--port", "8000"]
