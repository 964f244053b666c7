"""The training and evaluation layer: train, calibrate, evaluate, compare, benchmark. It
uses the pipeline and the registry; the API, the worker and the command line use it."""
