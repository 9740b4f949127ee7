// An unmodified application: gets a token with azidentity and prints it as JSON on stdout.
//
//	azidentity-token managed|default <scope>
//
// managed: ManagedIdentityCredential (AZURE_CLIENT_ID, or AZURE_RESOURCE_ID, optional); default:
// DefaultAzureCredential, which probes IMDS first. Both talk to 169.254.169.254, which is hard-coded in the SDK.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: azidentity-token managed|default <scope>")
		os.Exit(2)
	}
	var cred azcore.TokenCredential
	var err error
	switch os.Args[1] {
	case "managed":
		opts := &azidentity.ManagedIdentityCredentialOptions{}
		if id := os.Getenv("AZURE_CLIENT_ID"); id != "" {
			opts.ID = azidentity.ClientID(id)
		} else if id := os.Getenv("AZURE_RESOURCE_ID"); id != "" {
			opts.ID = azidentity.ResourceID(id)
		}
		cred, err = azidentity.NewManagedIdentityCredential(opts)
	case "default":
		cred, err = azidentity.NewDefaultAzureCredential(nil)
	default:
		fmt.Fprintln(os.Stderr, "usage: azidentity-token managed|default <scope>")
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	tok, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{os.Args[2]}})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	out, _ := json.Marshal(map[string]any{"token": tok.Token, "expiresOn": tok.ExpiresOn.Unix()})
	fmt.Println(string(out))
}
