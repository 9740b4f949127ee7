// The original aad-pod-identity demo's client, unmodified in what it does: a go-autorest adal token from
// the IMDS endpoint (system or user-assigned by client id), then an ARM call with it (list the VMs of a
// resource group). Prints {"token": ..., "vms": [...]} on stdout.
//
//	adal-demo <arm endpoint> <subscription> <resource group> [client id]
package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"

	"github.com/Azure/go-autorest/autorest"
	"github.com/Azure/go-autorest/autorest/adal"
)

func main() {
	if len(os.Args) < 4 || len(os.Args) > 5 {
		fmt.Fprintln(os.Stderr, "usage: adal-demo <arm endpoint> <subscription> <resource group> [client id]")
		os.Exit(2)
	}
	arm, sub, rg := strings.TrimSuffix(os.Args[1], "/"), os.Args[2], os.Args[3]
	msiEndpoint, err := adal.GetMSIVMEndpoint()
	fail(err)
	var spt *adal.ServicePrincipalToken
	if len(os.Args) == 5 {
		spt, err = adal.NewServicePrincipalTokenFromMSIWithUserAssignedID(msiEndpoint, arm+"/", os.Args[4])
	} else {
		spt, err = adal.NewServicePrincipalTokenFromMSI(msiEndpoint, arm+"/")
	}
	fail(err)
	fail(spt.Refresh())

	client := autorest.NewClientWithUserAgent("aad-pod-identity-demo")
	client.Authorizer = autorest.NewBearerAuthorizer(spt)
	req, err := autorest.Prepare(&http.Request{},
		autorest.AsGet(),
		autorest.WithBaseURL(arm),
		autorest.WithPathParameters("/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Compute/virtualMachines",
			map[string]any{"sub": sub, "rg": rg}),
		autorest.WithQueryParameters(map[string]any{"api-version": "2019-12-01"}),
		client.WithAuthorization())
	fail(err)
	resp, err := autorest.SendWithSender(client, req)
	fail(err)
	defer resp.Body.Close()
	var list struct {
		Value []struct {
			Name string `json:"name"`
		} `json:"value"`
	}
	if resp.StatusCode != http.StatusOK {
		fail(fmt.Errorf("ARM answered %s", resp.Status))
	}
	fail(json.NewDecoder(resp.Body).Decode(&list))
	names := []string{}
	for _, vm := range list.Value {
		names = append(names, vm.Name)
	}
	out, _ := json.Marshal(map[string]any{"token": spt.OAuthToken(), "vms": names})
	fmt.Println(string(out))
}

func fail(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
