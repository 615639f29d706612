from django.apps import AppConfig


class ServicingConfig(AppConfig):
    name = "servicing"
    verbose_name = "Servicing"

    def ready(self) -> None:
        # Pending autopay payments follow every schedule change, inside the command's
        # transaction (loans.hooks explains why the core exposes a registry).
        from loans import hooks
        from servicing.autopay import resync_after_schedule_change

        hooks.on_schedule_changed(resync_after_schedule_change)
