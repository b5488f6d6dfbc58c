"""Triggers that wait for vendor jobs in Airflow's triggerer, where waiting holds no worker slot."""
