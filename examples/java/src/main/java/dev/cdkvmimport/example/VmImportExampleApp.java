package dev.cdkvmimport.example;

import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import dev.cdkvmimport.BootMode;
import dev.cdkvmimport.DiskImage;
import dev.cdkvmimport.LicenseType;
import dev.cdkvmimport.Platform;
import dev.cdkvmimport.VmImageImport;
import software.amazon.awscdk.App;
import software.amazon.awscdk.RemovalPolicy;
import software.amazon.awscdk.Stack;
import software.amazon.awscdk.StackProps;
import software.amazon.awscdk.Tags;
import software.amazon.awscdk.services.ec2.Instance;
import software.amazon.awscdk.services.ec2.InstanceClass;
import software.amazon.awscdk.services.ec2.InstanceSize;
import software.amazon.awscdk.services.ec2.InstanceType;
import software.amazon.awscdk.services.ec2.SubnetSelection;
import software.amazon.awscdk.services.ec2.SubnetType;
import software.amazon.awscdk.services.ec2.Vpc;
import software.constructs.Construct;

/**
 * The example app of examples/app.ts, in Java: imports a VMDK disk image into an AMI and
 * launches an instance from it.
 */
public final class VmImportExampleApp {
    /** examples/images/web-server.vmdk; Maven runs the app in examples/java. */
    private static final String DISK = Path.of("..", "images", "web-server.vmdk").toAbsolutePath().normalize().toString();

    public static class VmImportExampleStack extends Stack {
        public VmImportExampleStack(final Construct scope, final String id, final StackProps props) {
            super(scope, id, props);

            VmImageImport image = VmImageImport.Builder.create(this, "WebServerImage")
                    .diskImages(List.of(DiskImage.fromAsset(DISK)))
                    .platform(Platform.LINUX)
                    .bootMode(BootMode.LEGACY_BIOS)
                    .licenseType(LicenseType.BYOL)
                    .description("Web server imported from a VMware disk")
                    .imageName("web-server-1.0.0")
                    .ssmParameterName("/images/web-server")
                    .tags(Map.of("Application", "web"))
                    .removalPolicy(RemovalPolicy.DESTROY)
                    .build();

            Vpc vpc = Vpc.Builder.create(this, "Vpc").maxAzs(1).natGateways(0).build();
            Instance.Builder.create(this, "WebServer")
                    .vpc(vpc)
                    .vpcSubnets(SubnetSelection.builder().subnetType(SubnetType.PUBLIC).build())
                    .machineImage(image)
                    .instanceType(InstanceType.of(InstanceClass.T3, InstanceSize.MICRO))
                    .build();
        }
    }

    public static void main(final String[] args) {
        App app = new App();
        Stack stack = new VmImportExampleStack(app, "VmImportExample", null);
        Tags.of(stack).add("Project", "cdk-vm-import-example");
        app.synth();
    }

    private VmImportExampleApp() {
    }
}
