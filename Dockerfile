# The issuer's image: gunicorn (web), Celery worker and beat from one image; see docker-compose.yml.
# BASE_IMAGE: any Debian-based image with Python 3.11 and venv (default python:3.11-slim; CI builds a Debian
# bookworm base with debootstrap, as no image registry is reachable there).
ARG BASE_IMAGE=python:3.11-slim

FROM ${BASE_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python3 -m venv /venv
COPY requirements.txt /tmp/requirements.txt
RUN /venv/bin/pip install -r /tmp/requirements.txt

FROM ${BASE_IMAGE}
ENV PATH=/venv/bin:$PATH PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
COPY --from=build /venv /venv
WORKDIR /app
COPY . .
# Static files collected and hashed at build time (whitenoise serves them compressed, cached for a year).
RUN DEBUG=1 SECRET_KEY=build-only python manage.py collectstatic --noinput -v0 \
    && useradd --uid 10001 --create-home --home-dir /home/issuer --shell /usr/sbin/nologin issuer \
    && mkdir -p var/beat && chown -R issuer var
USER issuer

EXPOSE 8000
CMD ["gunicorn", "-c", "config/gunicorn.conf.py", "config.wsgi", "--bind", "0.0.0.0:8000"]
