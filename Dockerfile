# The gossip node image. `docker build -t fastapi-gossip .` then
# `docker run -p 8000:8000 fastapi-gossip`; docs/DEPLOY.md has the cluster set-ups.

# Build stage: the project as a wheel (setuptools runs here, not in the final image).
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY gossip gossip
COPY node node
COPY simulations simulations
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

# Final stage: a venv holding the wheel and its dependencies, and no pip of its own.
FROM python:3.11-slim
RUN groupadd --system --gid 10001 gossip \
 && useradd --system --uid 10001 --gid gossip --no-create-home --shell /usr/sbin/nologin gossip
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    python -m venv --without-pip /opt/venv \
 && pip --python /opt/venv/bin/python install --no-cache-dir /wheels/*.whl
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /app
# Numeric, so that Kubernetes can check runAsNonRoot against it.
USER 10001:10001
EXPOSE 8000
# The standalone node; every other setting comes from GOSSIP_* variables. An app that
# embeds a node replaces this command with its own (uvicorn app:app ...).
CMD ["gossip-node", "--host", "0.0.0.0", "--port", "8000"]
