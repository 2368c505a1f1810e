"""hyoka's orchestrator: tasks, model backends, runs, factor analysis, reports and the CLI."""
