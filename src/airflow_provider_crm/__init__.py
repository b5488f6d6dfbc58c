"""Airflow provider that writes records into Kustomer, Kaiten, MicroBase and HubSpot."""

__version__ = "0.1.0"
