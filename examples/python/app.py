#!/usr/bin/env python3
"""The example app of examples/app.ts, in Python: imports a VMDK disk image into an AMI
and launches an instance from it. Synthesize it without an AWS account:

    python3 -m venv .venv && .venv/bin/pip install -r requirements.txt
    npx cdk synth --app ".venv/bin/python app.py"
"""
import os

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from constructs import Construct

from cdk_vm_import import BootMode, DiskImage, LicenseType, Platform, VmImageImport

DISK = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "images", "web-server.vmdk")


class VmImportExampleStack(cdk.Stack):
    def __init__(self, scope: Construct, construct_id: str, **kwargs) -> None:
        super().__init__(scope, construct_id, **kwargs)

        image = VmImageImport(
            self,
            "WebServerImage",
            disk_images=[DiskImage.from_asset(DISK)],
            platform=Platform.LINUX,
            boot_mode=BootMode.LEGACY_BIOS,
            license_type=LicenseType.BYOL,
            description="Web server imported from a VMware disk",
            image_name="web-server-1.0.0",
            ssm_parameter_name="/images/web-server",
            tags={"Application": "web"},
            removal_policy=cdk.RemovalPolicy.DESTROY,
        )

        vpc = ec2.Vpc(self, "Vpc", max_azs=1, nat_gateways=0)
        ec2.Instance(
            self,
            "WebServer",
            vpc=vpc,
            vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PUBLIC),
            machine_image=image,
            instance_type=ec2.InstanceType.of(ec2.InstanceClass.T3, ec2.InstanceSize.MICRO),
        )


app = cdk.App()
stack = VmImportExampleStack(app, "VmImportExample")
cdk.Tags.of(stack).add("Project", "cdk-vm-import-example")
app.synth()
