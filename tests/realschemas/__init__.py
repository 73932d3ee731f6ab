"""A Django project with Django's contrib apps only (settings.py): the schema Django's own migrate makes."""
