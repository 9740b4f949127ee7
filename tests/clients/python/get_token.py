"""An unmodified application: gets a token with azure-identity and prints it as JSON on stdout.

    python get_token.py managed|default <scope>

managed: ManagedIdentityCredential (AZURE_CLIENT_ID optional); default: DefaultAzureCredential. Both reach
IMDS at 169.254.169.254 unless AZURE_POD_IDENTITY_AUTHORITY_HOST points elsewhere. Trust for a private CA
comes from REQUESTS_CA_BUNDLE / SSL_CERT_FILE, as for any Python app.
"""
import json
import os
import sys

from azure.identity import DefaultAzureCredential, ManagedIdentityCredential


def main() -> int:
    if len(sys.argv) != 3 or sys.argv[1] not in ("managed", "default"):
        print("usage: get_token.py managed|default <scope>", file=sys.stderr)
        return 2
    kind, scope = sys.argv[1:]
    client_id = os.environ.get("AZURE_CLIENT_ID")
    if kind == "managed":
        credential = ManagedIdentityCredential(client_id=client_id) if client_id else ManagedIdentityCredential()
    else:
        credential = DefaultAzureCredential()
    try:
        token = credential.get_token(scope)
    except Exception as e:  # the app reports what the SDK raised, as an app would
        print(f"{type(e).__name__}: {e}", file=sys.stderr)
        return 1
    print(json.dumps({"token": token.token, "expiresOn": token.expires_on}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
