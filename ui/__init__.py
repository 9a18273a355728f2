"""The Gradio demo: layout (layout.py), what the controls do (handlers.py), the models behind them (models.py)."""
