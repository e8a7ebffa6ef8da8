"""What Hapex holds about a client, shown to that client: the data export, notices, and when
each connection's credentials were used."""

from intake.account_data.views import blueprint

__all__ = ["blueprint"]
