# syntax=docker/dockerfile:1
# One image for jwtgate's three Python services (validator, auth API, sample backend).
# gunicorn is the entry point; the command picks the service's own gunicorn config,
# the same file `make run` starts it with:
#   docker run jwtgate:local -c validator/gunicorn.conf.py
# Keys, the user database and every setting come at run time (volume, environment),
# never from the image. docker-compose.yml runs it; see the README.

# Pinned by tag here; pin by digest for a reproducible build, and re-pin on each base image
# release (docs/operations.md, "Container images"):
#   docker build --build-arg PYTHON_IMAGE=python:3.11-slim-bookworm@sha256:<digest> .
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# Builder: wheels of the project and of its dependencies (constraints.txt's versions), nothing installed.
FROM ${PYTHON_IMAGE} AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml setup.cfg README.md constraints.txt ./
COPY jwtgate/ jwtgate/
COPY validator/ validator/
COPY auth_api/ auth_api/
COPY backend/ backend/
COPY launcher/ launcher/
COPY nginx/ nginx/
# The Redis and PostgreSQL extras: the scale-out Compose file runs this image against both.
RUN pip wheel --wheel-dir /wheels -c constraints.txt '.[redis,postgres]'

# Final stage: the wheels installed offline; no compiler, no pip, no source tree.
FROM ${PYTHON_IMAGE}
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    JWTGATE_DATA_DIR=/var/lib/jwtgate
# /app/<service>/gunicorn.conf.py link to the installed package's own config files, so the
# relative paths in the command are those of the repository; /app holds nothing else.
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    pip install --no-index --find-links=/wheels /wheels/*.whl \
    && pip uninstall --yes setuptools wheel pip \
    && groupadd --system --gid 10001 jwtgate \
    && useradd --system --uid 10001 --gid jwtgate --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin jwtgate \
    && install -d -o jwtgate -g jwtgate -m 0700 /var/lib/jwtgate \
    && site="$(python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')" \
    && for service in validator auth_api backend; do \
        install -d "/app/${service}" \
        && ln -s "${site}/${service}/gunicorn.conf.py" "/app/${service}/gunicorn.conf.py" \
        && test -f "/app/${service}/gunicorn.conf.py"; \
    done
WORKDIR /app
# Numeric, so a runtime can check it is not root without reading the image's passwd file.
USER 10001:10001
EXPOSE 8000
ENTRYPOINT ["gunicorn"]
CMD ["-c", "validator/gunicorn.conf.py"]
