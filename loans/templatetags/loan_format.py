"""Template filters for the admin pages: ``{{ amount|money }}``, ``{{ day|iso }}``,
``{{ moment|local_utc:borrower.timezone }}`` (see ``loans.formatting``)."""

from django import template

from loans import formatting

register = template.Library()


@register.filter
def money(value):
    return formatting.money(value)


@register.filter
def iso(value):
    return formatting.iso_date(value)


@register.filter
def local_utc(value, zone_name):
    return formatting.local_and_utc(value, zone_name)
