"""hyoka's sandbox service: locked-down, single-use execution of model-written Python
(HumanEval / JHumanEval pass@k) over gRPC."""

__version__ = "0.1.0"
