"""Training: the torch model, the per-rank loop, the Spark-side inputs and MLflow tracking (DESIGN §5).

``model``, ``ranking`` and ``loop`` import torch only (they run inside TorchDistributor's processes);
``data`` holds the Spark transforms; ``tracking`` the MLflow calls made on the driver.
"""
