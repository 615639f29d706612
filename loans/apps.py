from django.apps import AppConfig
from django.db.models.signals import post_migrate


class LoansConfig(AppConfig):
    name = "loans"
    verbose_name = "Loans"

    def ready(self):
        from loans.groups import sync_groups_after_migrate

        post_migrate.connect(sync_groups_after_migrate, dispatch_uid="loans.sync_groups")
