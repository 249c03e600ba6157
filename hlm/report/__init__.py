"""The thesis report: inputs (what a run wrote) -> view (one view of the analysis: models and
sections, numbers formatted by apa, equations by equations) -> render (HTML and Markdown
through writers and the templates) and docx (the tables in Word).
"""
