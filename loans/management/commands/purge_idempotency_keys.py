from django.core.management.base import BaseCommand

from loans.idempotency import purge_expired


class Command(BaseCommand):
    help = "Delete expired Idempotency-Key records (they are already treated as new)."

    def handle(self, *args, **options):
        deleted = purge_expired()
        self.stdout.write(f"Deleted {deleted} expired idempotency key(s).")
