// The example app of examples/app.ts, in Go: imports a VMDK disk image into an AMI and
// launches an instance from it. Synthesize it without an AWS account:
//
//	npx cdk synth --app "go run ."
package main

import (
	"path/filepath"
	"runtime"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsec2"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
	"github.com/cdk-vm-import/cdk-vm-import-go/cdkvmimport"
)

// disk is examples/images/web-server.vmdk, found from this file's folder.
func disk() string {
	_, self, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(self), "..", "images", "web-server.vmdk")
}

func NewVmImportExampleStack(scope constructs.Construct, id string, props *awscdk.StackProps) awscdk.Stack {
	stack := awscdk.NewStack(scope, jsii.String(id), props)

	image := cdkvmimport.NewVmImageImport(stack, jsii.String("WebServerImage"), &cdkvmimport.VmImageImportProps{
		DiskImages:       &[]cdkvmimport.DiskImage{cdkvmimport.DiskImage_FromAsset(jsii.String(disk()), nil)},
		Platform:         cdkvmimport.Platform_LINUX,
		BootMode:         cdkvmimport.BootMode_LEGACY_BIOS,
		LicenseType:      cdkvmimport.LicenseType_BYOL,
		Description:      jsii.String("Web server imported from a VMware disk"),
		ImageName:        jsii.String("web-server-1.0.0"),
		SsmParameterName: jsii.String("/images/web-server"),
		Tags:             &map[string]*string{"Application": jsii.String("web")},
		RemovalPolicy:    awscdk.RemovalPolicy_DESTROY,
	})

	vpc := awsec2.NewVpc(stack, jsii.String("Vpc"), &awsec2.VpcProps{
		MaxAzs:      jsii.Number(1),
		NatGateways: jsii.Number(0),
	})
	awsec2.NewInstance(stack, jsii.String("WebServer"), &awsec2.InstanceProps{
		Vpc:          vpc,
		VpcSubnets:   &awsec2.SubnetSelection{SubnetType: awsec2.SubnetType_PUBLIC},
		MachineImage: image,
		InstanceType: awsec2.InstanceType_Of(awsec2.InstanceClass_T3, awsec2.InstanceSize_MICRO),
	})
	return stack
}

func main() {
	defer jsii.Close()
	app := awscdk.NewApp(nil)
	stack := NewVmImportExampleStack(app, "VmImportExample", nil)
	awscdk.Tags_Of(stack).Add(jsii.String("Project"), jsii.String("cdk-vm-import-example"), nil)
	app.Synth(nil)
}
