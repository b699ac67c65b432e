/*
 * microlith's Cortex-M4 board for qemu-system-arm -M mps2-an386 (see run.py).
 *
 * Vector table, reset handler, fault handlers and semihosting I/O, written for
 * microlith (no vendor startup or CMSIS code). Reset: enable the FPU (the code
 * is built with -mfloat-abi=hard -mfpu=fpv4-sp-d16), copy .data from flash,
 * zero .bss, run the init arrays, call main(), flush stdio if the program
 * uses it, and leave qemu through semihosting SYS_EXIT_EXTENDED so that
 * main's return value becomes qemu's exit status. Any fault or unexpected
 * exception prints one line over semihosting (stacked pc/lr, fault status
 * registers) and exits with a distinctive status (BOARD_EXIT_* below; run.py
 * knows them).
 *
 * Board services for the harness (declare them where used):
 *   void board_write(const char *s);          semihosting SYS_WRITE0
 *   void board_exit(int code);                never returns
 *
 * Interrupt handlers are weak aliases of a default that reports the exception
 * number and exits; override e.g. TIMER0_IRQHandler by defining it.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* qemu exit statuses for faults (all above anything main() returns by design). */
#define BOARD_EXIT_HARDFAULT 0xF1
#define BOARD_EXIT_MEMMANAGE 0xF2
#define BOARD_EXIT_BUSFAULT 0xF3
#define BOARD_EXIT_USAGEFAULT 0xF4
#define BOARD_EXIT_NMI 0xF5
#define BOARD_EXIT_UNEXPECTED 0xF6

/* Semihosting operations and reasons (ARM "Semihosting for AArch32 and AArch64"). */
#define SYS_WRITE0 0x04u
#define SYS_EXIT 0x18u
#define SYS_EXIT_EXTENDED 0x20u
#define ADP_STOPPED_APPLICATION_EXIT 0x20026u
#define ADP_STOPPED_RUNTIME_ERROR_UNKNOWN 0x20023u

/* System control block registers. */
#define SCB_CPACR (*(volatile uint32_t *)0xE000ED88u)
#define SCB_CFSR (*(volatile uint32_t *)0xE000ED28u)
#define SCB_HFSR (*(volatile uint32_t *)0xE000ED2Cu)
#define SCB_MMFAR (*(volatile uint32_t *)0xE000ED34u)
#define SCB_BFAR (*(volatile uint32_t *)0xE000ED38u)

/* Linker-script symbols (mps2_an386.ld). */
extern uint32_t __data_load__[];
extern uint32_t __data_start__[];
extern uint32_t __data_end__[];
extern uint32_t __bss_start__[];
extern uint32_t __bss_end__[];
extern uint32_t __stack_top__[];
extern char __heap_start__[];
extern char __heap_end__[];
extern void (*__preinit_array_start[])(void);
extern void (*__preinit_array_end[])(void);
extern void (*__init_array_start[])(void);
extern void (*__init_array_end[])(void);

int main(void);
/* Weak: present only if the program uses stdio (newlib + rdimon), never pulled in by us. */
extern void initialise_monitor_handles(void) __attribute__((weak));
#pragma weak fflush

void board_write(const char *s);
void board_exit(int code) __attribute__((noreturn));
void *_sbrk(ptrdiff_t increment);
void Reset_Handler(void) __attribute__((noreturn));
void Fault_Handler(void) __attribute__((naked));
void board_fault(const uint32_t *frame, uint32_t exception) __attribute__((noreturn, used));

static uint32_t semihost(uint32_t op, const void *arg)
{
    register uint32_t r0 __asm__("r0") = op;
    register const void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

void board_write(const char *s)
{
    semihost(SYS_WRITE0, s);
}

void board_exit(int code)
{
    /* SYS_EXIT_EXTENDED carries the status on AArch32; plain SYS_EXIT only
     * says success or failure (the fallback for hosts without the extension). */
    const uint32_t block[2] = {ADP_STOPPED_APPLICATION_EXIT, (uint32_t)code};
    semihost(SYS_EXIT_EXTENDED, block);
    semihost(SYS_EXIT, (const void *)(uintptr_t)(code == 0 ? ADP_STOPPED_APPLICATION_EXIT
                                                           : ADP_STOPPED_RUNTIME_ERROR_UNKNOWN));
    for (;;) {
        __asm__ volatile("wfi");
    }
}

/* Heap for newlib's malloc, bounded by the linker script (between .bss and the stack). */
void *_sbrk(ptrdiff_t increment)
{
    static char *brk = __heap_start__;
    char *previous = brk;
    if (increment > __heap_end__ - brk || increment < __heap_start__ - brk) {
        return (void *)-1;
    }
    brk += increment;
    return previous;
}

void Reset_Handler(void)
{
    /* CP10 and CP11 full access before any floating-point instruction. */
    SCB_CPACR |= 0xFu << 20;
    __asm__ volatile("dsb\n\tisb" ::: "memory");

    const uint32_t *src = __data_load__;
    for (uint32_t *dst = __data_start__; dst < __data_end__;) {
        *dst++ = *src++;
    }
    for (uint32_t *dst = __bss_start__; dst < __bss_end__;) {
        *dst++ = 0u;
    }
    for (void (**f)(void) = __preinit_array_start; f < __preinit_array_end; ++f) {
        (*f)();
    }
    for (void (**f)(void) = __init_array_start; f < __init_array_end; ++f) {
        (*f)();
    }
    if (initialise_monitor_handles) {
        initialise_monitor_handles();
    }
    int status = main();
    if (fflush) {
        fflush(NULL); /* what exit() would do for buffered printf output */
    }
    board_exit(status);
}

static char *put_str(char *p, const char *s)
{
    while (*s) {
        *p++ = *s++;
    }
    return p;
}

static char *put_hex(char *p, const char *label, uint32_t v)
{
    static const char digits[] = "0123456789abcdef";
    p = put_str(p, label);
    *p++ = '0';
    *p++ = 'x';
    for (int shift = 28; shift >= 0; shift -= 4) {
        *p++ = digits[(v >> shift) & 0xFu];
    }
    return p;
}

/* Reports the fault (stacked pc/lr, fault status registers) and exits. */
void board_fault(const uint32_t *frame, uint32_t exception)
{
    static const char *const names[] = {"?", "Reset", "NMI", "HardFault", "MemManage",
                                        "BusFault", "UsageFault"};
    int code = BOARD_EXIT_UNEXPECTED;
    switch (exception) {
    case 2: code = BOARD_EXIT_NMI; break;
    case 3: code = BOARD_EXIT_HARDFAULT; break;
    case 4: code = BOARD_EXIT_MEMMANAGE; break;
    case 5: code = BOARD_EXIT_BUSFAULT; break;
    case 6: code = BOARD_EXIT_USAGEFAULT; break;
    default: break;
    }
    char line[200];
    char *p = put_str(line, "\nmicrolith-board: ");
    if (exception < sizeof names / sizeof names[0]) {
        p = put_str(p, names[exception]);
    } else {
        p = put_hex(p, "exception ", exception);
    }
    p = put_hex(p, " pc=", frame[6]);
    p = put_hex(p, " lr=", frame[5]);
    p = put_hex(p, " cfsr=", SCB_CFSR);
    p = put_hex(p, " hfsr=", SCB_HFSR);
    p = put_hex(p, " bfar=", SCB_BFAR);
    p = put_hex(p, " mmfar=", SCB_MMFAR);
    *p++ = '\n';
    *p = '\0';
    board_write(line);
    board_exit(code);
}

/* Every exception but reset lands here: find the stacked frame (MSP or PSP,
 * from EXC_RETURN bit 2) and the exception number (IPSR), then report. */
void Fault_Handler(void)
{
    __asm__ volatile(
        "tst lr, #4\n\t"
        "ite eq\n\t"
        "mrseq r0, msp\n\t"
        "mrsne r0, psp\n\t"
        "mrs r1, ipsr\n\t"
        "b board_fault\n\t");
}

#define WEAK_HANDLER(name) void name(void) __attribute__((weak, alias("Fault_Handler")))
WEAK_HANDLER(NMI_Handler);
WEAK_HANDLER(HardFault_Handler);
WEAK_HANDLER(MemManage_Handler);
WEAK_HANDLER(BusFault_Handler);
WEAK_HANDLER(UsageFault_Handler);
WEAK_HANDLER(SVC_Handler);
WEAK_HANDLER(DebugMon_Handler);
WEAK_HANDLER(PendSV_Handler);
WEAK_HANDLER(SysTick_Handler);
/* mps2-an386 external interrupts (AN386 table); the rest use Fault_Handler. */
WEAK_HANDLER(TIMER0_IRQHandler);   /* IRQ 8: CMSDK APB timer 0 @ 0x40000000 */
WEAK_HANDLER(TIMER1_IRQHandler);   /* IRQ 9: CMSDK APB timer 1 @ 0x40001000 */
WEAK_HANDLER(DUALTIMER_IRQHandler); /* IRQ 10: CMSDK dual timer @ 0x40002000 */

typedef void (*vector_t)(void);

__attribute__((section(".vectors"), used)) static const vector_t vectors[16 + 32] = {
    (vector_t)(uintptr_t)__stack_top__,
    Reset_Handler,
    NMI_Handler,
    HardFault_Handler,
    MemManage_Handler,
    BusFault_Handler,
    UsageFault_Handler,
    0,
    0,
    0,
    0,
    SVC_Handler,
    DebugMon_Handler,
    0,
    PendSV_Handler,
    SysTick_Handler,
    Fault_Handler, Fault_Handler, Fault_Handler, Fault_Handler, /* IRQ 0..3 */
    Fault_Handler, Fault_Handler, Fault_Handler, Fault_Handler, /* IRQ 4..7 */
    TIMER0_IRQHandler, TIMER1_IRQHandler, DUALTIMER_IRQHandler, Fault_Handler, /* IRQ 8..11 */
    Fault_Handler, Fault_Handler, Fault_Handler, Fault_Handler, /* IRQ 12..15 */
    Fault_Handler, Fault_Handler, Fault_Handler, Fault_Handler, /* IRQ 16..19 */
    Fault_Handler, Fault_Handler, Fault_Handler, Fault_Handler, /* IRQ 20..23 */
    Fault_Handler, Fault_Handler, Fault_Handler, Fault_Handler, /* IRQ 24..27 */
    Fault_Handler, Fault_Handler, Fault_Handler, Fault_Handler, /* IRQ 28..31 */
};
