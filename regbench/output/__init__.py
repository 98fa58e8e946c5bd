"""What users read: tables, figures, report.html, and the TensorBoard and MLflow exports."""
