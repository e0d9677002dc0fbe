/* startup.c: the reset code for the nnc embedded examples on qemu's mps2-an386 (Cortex-M4F),
 * with newlib and semihosting (--specs=rdimon.specs).  It holds the vector table: the
 * initial stack pointer (the top of RAM, from link.ld) and the reset handler, plus one
 * handler for every fault, which reports it through semihosting and exits with status
 * 128 + the exception number, so that a crash ends qemu instead of hanging it.  The reset
 * handler first enables the FPU: the Cortex-M4F resets with coprocessors 10 and 11 (the
 * FPU) disabled, and the code built with -mfloat-abi=hard uses VFP instructions and
 * registers from the first float operation on (newlib's printf too), which would fault.
 * It then copies .data from flash to RAM and zeroes .bss (the generated model's static
 * arrays, all zero until NAME_new/NAME_init fill them), opens the semihosting stdin,
 * stdout and stderr (initialise_monitor_handles: the job rdimon's crt0 would do, which
 * this reset handler replaces), runs the constructors, calls main and passes its return
 * value to exit(), which ends qemu with that status (semihosting SYS_EXIT, extended).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

extern uint32_t __data_start__[], __data_end__[], __data_load__[];
extern uint32_t __bss_start__[], __bss_end__[];
extern uint32_t __stack_top[];

extern int main(void);
extern void initialise_monitor_handles(void);
extern void __libc_init_array(void);

void Reset_Handler(void);
void Fault_Handler(void);

#define SCB_CPACR (*(volatile uint32_t *)0xE000ED88u)   /* Coprocessor Access Control */
#define SCB_CFSR  (*(volatile uint32_t *)0xE000ED28u)   /* Configurable Fault Status */

/* The vector table: link.ld places it at address 0, where the core reads it on reset. */
typedef void (*vector)(void);
__attribute__((section(".isr_vector"), used))
static const vector vector_table[16] = {
    (vector)(uintptr_t)__stack_top,  /* initial stack pointer */
    Reset_Handler,                   /* 1 reset */
    Fault_Handler,                   /* 2 NMI */
    Fault_Handler,                   /* 3 HardFault */
    Fault_Handler,                   /* 4 MemManage */
    Fault_Handler,                   /* 5 BusFault */
    Fault_Handler,                   /* 6 UsageFault */
    0, 0, 0, 0,                      /* 7-10 reserved */
    Fault_Handler,                   /* 11 SVCall */
    Fault_Handler,                   /* 12 DebugMonitor */
    0,                               /* 13 reserved */
    Fault_Handler,                   /* 14 PendSV */
    Fault_Handler,                   /* 15 SysTick */
};

void Reset_Handler(void)
{
    /* Full access (0b11) to CP10 and CP11, the FPU; then let the write take effect before
     * the first floating-point instruction. */
    SCB_CPACR |= 0xFu << 20;
    __asm__ volatile("dsb\n\tisb" ::: "memory");

    for (uint32_t *s = __data_load__, *d = __data_start__; d < __data_end__;)
        *d++ = *s++;
    for (uint32_t *d = __bss_start__; d < __bss_end__;)
        *d++ = 0;

    initialise_monitor_handles();
    __libc_init_array();
    exit(main());
}

/* Any other exception: say which (IPSR) and the fault status, then end qemu. */
void Fault_Handler(void)
{
    uint32_t ipsr;
    __asm__ volatile("mrs %0, ipsr" : "=r"(ipsr));
    ipsr &= 0x1FFu;
    fprintf(stderr, "fault: exception %lu, CFSR 0x%08lx\n", (unsigned long)ipsr,
            (unsigned long)SCB_CFSR);
    exit(128 + (int)ipsr);
}
