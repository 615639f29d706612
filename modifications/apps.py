from django.apps import AppConfig


class ModificationsConfig(AppConfig):
    name = "modifications"
    verbose_name = "Modifications"
