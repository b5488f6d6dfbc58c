"""One package per emulated vendor, each laid out the same way.

``app.py`` holds the :class:`~airflow_provider_crm.sandbox.common.vendor_app.VendorApp` (routes
and handlers), ``state.py`` what it stores, ``validation.py`` the request-body rules,
``errors.py`` the vendor's error bodies; further modules exist where a vendor needs them
(HubSpot's ``batch``, ``properties``, ``limits``, ``render``, ``writes``; MicroBase's ``oauth``).
"""
