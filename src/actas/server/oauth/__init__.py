"""OAuth 2.0 endpoints: RFC 8693 token exchange, for an application's admin tool to start
an impersonation with a machine credential instead of the Backend API's secret key."""
