// The README's VPC example, type-checked. The lines between the README markers are the
// README's code block (test/readme.test.ts keeps the two equal).
import { Stack } from 'aws-cdk-lib';
import { Construct } from 'constructs';
// README:start
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import { DiskImage, LicenseType, VmImageImport } from 'cdk-vm-import';

declare const vpc: ec2.Vpc;
// README:end

export class EngineInVpcExample extends Stack {
  constructor(scope: Construct, id: string) {
    super(scope, id);
    // README:start
    // Isolated subnets: the engine's function reaches AWS through endpoints only.
    const subnets = { subnetType: ec2.SubnetType.PRIVATE_ISOLATED };
    vpc.addInterfaceEndpoint('Ec2', { service: ec2.InterfaceVpcEndpointAwsService.EC2, subnets });
    vpc.addInterfaceEndpoint('States', { service: ec2.InterfaceVpcEndpointAwsService.STEP_FUNCTIONS, subnets });
    vpc.addInterfaceEndpoint('CloudFormation', { service: ec2.InterfaceVpcEndpointAwsService.CLOUDFORMATION, subnets });
    // The custom resource's answer goes to a pre-signed S3 URL.
    vpc.addGatewayEndpoint('S3', { service: ec2.GatewayVpcEndpointAwsService.S3, subnets: [subnets] });

    // Every import of the stack gives the same vpc and vpcSubnets: they share one engine.
    new VmImageImport(this, 'Web', {
      diskImages: [DiskImage.fromImportBucket('builds/web-1.4.2.ova')],
      licenseType: LicenseType.BYOL,
      vpc,
      vpcSubnets: subnets,
    });
    // README:end
  }
}
