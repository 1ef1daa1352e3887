package kube

import (
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	certificatesv1 "k8s.io/api/certificates/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	eventsv1 "k8s.io/api/events/v1"
	flowcontrolv1 "k8s.io/api/flowcontrol/v1"
	networkingv1 "k8s.io/api/networking/v1"
	nodev1 "k8s.io/api/node/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer/protobuf"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
)

// scheme knows the built-in API groups in the versions kube-apiserver
// stores them in. It is registered by hand instead of through client-go's
// scheme, which would pull in all of client-go for one map.
var scheme = runtime.NewScheme()

// protoSerializer decodes the "k8s\x00" envelope exactly as kube-apiserver's
// storage codec does.
var protoSerializer *protobuf.Serializer

func init() {
	for _, add := range []func(*runtime.Scheme) error{
		corev1.AddToScheme, appsv1.AddToScheme, batchv1.AddToScheme,
		autoscalingv1.AddToScheme, autoscalingv2.AddToScheme,
		networkingv1.AddToScheme, discoveryv1.AddToScheme, coordinationv1.AddToScheme,
		policyv1.AddToScheme, rbacv1.AddToScheme, storagev1.AddToScheme,
		schedulingv1.AddToScheme, eventsv1.AddToScheme, nodev1.AddToScheme,
		admissionregistrationv1.AddToScheme, certificatesv1.AddToScheme, flowcontrolv1.AddToScheme,
	} {
		utilruntime.Must(add(scheme))
	}
	protoSerializer = protobuf.NewSerializer(scheme, scheme)
}
